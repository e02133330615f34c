package warmpool

import (
	"context"
	"testing"

	"github.com/warmpool/warmpool/internal/refserver"
)

// The tests below exist for scripts/postjson-path, which runs them alone
// under a coverage profile: the functions a test runs more often than the
// one before it are the path of one PostJSON through the package, cold (its
// dial included) or warm (on a pooled connection).

func TestPathNewClose(t *testing.T)      { pathPosts(t, 0) }
func TestPathPostJSON(t *testing.T)      { pathPosts(t, 1) }
func TestPathPostJSONTwice(t *testing.T) { pathPosts(t, 2) }

func pathPosts(t *testing.T, n int) {
	srv := startServer(t, refserver.Options{})
	c := newClient(t, srv, Config{})
	for range n {
		var out map[string]any
		if err := c.PostJSON(context.Background(), srv.URL()+"/answer", map[string]string{"question": "q"}, &out); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
}
