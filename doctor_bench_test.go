package warmpool

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/refserver"
)

// BenchmarkSequentialPost measures what warmpool's request path (stats
// counters, hooks, timeouts, retry bookkeeping) costs over a bare
// http.Client with the same transport settings, on sequential POSTs to a
// loopback reference server. Both run the same server in-process, so the
// difference in ns/op and allocs/op is the client's. Compare with benchstat:
//
//	go test -run '^$' -bench SequentialPost -benchtime 3s -count 6 . | tee new.txt
func BenchmarkSequentialPost(b *testing.B) {
	srv := startServer(b, refserver.Options{})
	url := srv.URL() + "/answer"

	b.Run("client=bare", func(b *testing.B) {
		tr := &http.Transport{
			MaxIdleConnsPerHost: 100,
			MaxConnsPerHost:     100,
			IdleConnTimeout:     30 * time.Second,
		}
		defer tr.CloseIdleConnections()
		hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
		benchPosts(b, hc.Do, url)
	})
	b.Run("client=warmpool", func(b *testing.B) {
		cfg := DefaultConfig()
		cfg.MaxConnections = 100
		cfg.MaxKeepaliveConnections = 100
		cfg.KeepaliveExpiry = 30 * time.Second
		cfg.RequestTimeout = 30 * time.Second
		cfg.DisableHTTP2 = true
		c := newClient(b, srv, cfg)
		benchPosts(b, c.Do, url)
	})
}

var benchBody = []byte(`{"question":"what does pooling buy?"}`)

func benchPosts(b *testing.B, do func(*http.Request) (*http.Response, error), url string) {
	b.ReportAllocs()
	for b.Loop() {
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(benchBody))
		if err != nil {
			b.Fatal(err)
		}
		req.Header["Content-Type"] = jsonContentType
		resp, err := do(req)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}
