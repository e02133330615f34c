package warmpool

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/refserver"
)

// debugFleet is a client that has called hosts hosts, one of them a closed
// port, with a full five minutes of history: 60 samples, each after one to
// four calls per host. It is the pool page's worst case of ordinary use.
func debugFleet(t testing.TB, hosts int) *Client {
	t.Helper()
	cfg := DefaultConfig()
	cfg.MaxRetries = -1 // the closed port fails at once
	c, err := New(cfg, WithLogger(discardLogger()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	urls := make([]string, 0, hosts)
	for range hosts - 1 {
		urls = append(urls, startServer(t, refserver.Options{}).URL()+"/answer")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	urls = append(urls, "http://"+ln.Addr().String()+"/answer")
	ln.Close() // refused from now on

	start := time.Now()
	for i := range historySlots + 1 {
		for j, u := range urls {
			for range 1 + (i+j)%4 {
				_ = c.PostJSON(context.Background(), u, question, nil)
			}
		}
		c.history.sample(start.Add(time.Duration(i+1) * historyInterval))
	}
	return c
}

// TestDebugPageSize holds the page of ten hosts with full charts under
// 100 KB.
func TestDebugPageSize(t *testing.T) {
	c := debugFleet(t, 10)
	h := DebugHandler(c)
	for _, path := range []string{"/debug/warmpool/", "/debug/warmpool/stats.json"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: status %d", path, rec.Code)
		}
		n := rec.Body.Len()
		t.Logf("%s: %d bytes for 10 hosts and five minutes of history", path, n)
		if n >= 100<<10 {
			t.Errorf("%s weighs %d bytes, want under 100 KB", path, n)
		}
		if path == "/debug/warmpool/" {
			checkPageSelfContained(t, rec.Body.String(), rec.Header())
			if got := bytes.Count(rec.Body.Bytes(), []byte("<figure")); got != 6*11 {
				t.Errorf("the page has %d charts, want 6 for the total and each of 10 hosts", got)
			}
		}
	}
}

// BenchmarkDebugHandler measures what one request to the pool page and to
// its stats.json costs the process, for a client of ten hosts with five
// minutes of history:
//
//	go test -run '^$' -bench DebugHandler -benchtime 2s .
func BenchmarkDebugHandler(b *testing.B) {
	c := debugFleet(b, 10)
	h := DebugHandler(c)
	for _, path := range []string{"stats.json", ""} {
		name := "page=stats.json"
		if path == "" {
			name = "page=html"
		}
		b.Run(name+"/hosts=10", func(b *testing.B) {
			b.ReportAllocs()
			req := httptest.NewRequest(http.MethodGet, "/debug/warmpool/"+path, nil)
			var size int
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				size = rec.Body.Len()
			}
			b.ReportMetric(float64(size), "bytes/response")
		})
	}
}
