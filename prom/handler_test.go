package prom

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/refserver"
)

// TestHandler scrapes Handler over HTTP: the text format, every collector's
// metrics, and nothing else.
func TestHandler(t *testing.T) {
	srv := startServer(t, refserver.Options{})
	reqs := NewRequestCollector()
	c := newClient(t, warmpool.DefaultConfig(), warmpool.WithHooks(reqs.Hooks()))
	mustSend(t, c, srv.URL()+"/answer", 2)

	ts := httptest.NewServer(Handler(NewCollector(c), reqs))
	defer ts.Close()
	resp, err := ts.Client().Get(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status: got %d, want 200; body %q", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type: got %q, want the text format", ct)
	}
	text := string(body)
	p := port(t, srv.Addr())
	for _, want := range []string{
		fmt.Sprintf("warmpool_connections_created_total{endpoint=\"\",server_address=\"127.0.0.1\",server_port=%q} 1\n", p),
		fmt.Sprintf("warmpool_connections_closed_total{endpoint=\"\",server_address=\"127.0.0.1\",server_port=%q,warmpool_close_reason=\"unused\"} 0\n", p),
		fmt.Sprintf("warmpool_responses_total{http_response_status_code=\"200\",server_address=\"127.0.0.1\",server_port=%q} 2\n", p),
	} {
		if !strings.Contains(text, want) {
			t.Errorf("body lacks %q:\n%s", want, text)
		}
	}
	for line := range strings.Lines(text) {
		if name, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(line, "# HELP "), "# TYPE "), " "); !strings.HasPrefix(name, "warmpool_") {
			t.Errorf("unexpected metric: %q", line)
		}
	}
}

func TestHandlerPanicsOnDuplicates(t *testing.T) {
	c := newClient(t, warmpool.DefaultConfig())
	defer func() {
		if recover() == nil {
			t.Error("Handler with the same metrics twice did not panic")
		}
	}()
	Handler(NewCollector(c), NewCollector(c))
}
