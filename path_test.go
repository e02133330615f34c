package warmpool

import (
	"context"
	"testing"

	"github.com/warmpool/warmpool/internal/refserver"
)

// The two tests below exist for scripts/postjson-path, which runs each alone
// under a coverage profile: the functions the second runs more often than the
// first are the path of one PostJSON (its dial included) through the package.

func TestPathNewClose(t *testing.T) {
	srv := startServer(t, refserver.Options{})
	c := newClient(t, srv, Config{})
	c.Close()
}

func TestPathPostJSON(t *testing.T) {
	srv := startServer(t, refserver.Options{})
	c := newClient(t, srv, Config{})
	var out map[string]any
	if err := c.PostJSON(context.Background(), srv.URL()+"/answer", map[string]string{"question": "q"}, &out); err != nil {
		t.Fatal(err)
	}
	c.Close()
}
