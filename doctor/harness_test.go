package doctor

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/load"
	"github.com/warmpool/warmpool/internal/refserver"
)

// protos are the protocols the healthy-pool tests run over.
var protos = []struct {
	name   string
	server string
	http2  bool
}{
	{"http1", "http", false},
	{"tls-http1", "tls-h1", false},
	{"tls-http2", "tls", true},
}

// startServer starts a reference server on 127.0.0.1, closed after the test.
func startServer(t testing.TB, opts refserver.Options) *refserver.Server {
	t.Helper()
	srv, err := refserver.New(opts)
	if err != nil {
		t.Fatalf("refserver.New: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// newClient builds a client trusting srv and closes it after the test.
func newClient(t testing.TB, srv *refserver.Server, cfg warmpool.Config, opts ...warmpool.Option) *warmpool.Client {
	t.Helper()
	if tc := srv.ClientTLSConfig(); tc != nil {
		opts = append([]warmpool.Option{warmpool.WithTLSConfig(tc)}, opts...)
	}
	c, err := warmpool.New(cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var question = map[string]string{"question": "what does pooling buy?"}

// post POSTs the question to url and reads the answer.
func post(c *warmpool.Client, url string) error {
	var a struct{ Answer string }
	return c.PostJSON(context.Background(), url, question, &a)
}

// doUnread POSTs to url and closes the answer's body without reading it.
func doUnread(c *warmpool.Client, url string) error {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"question":"?"}`))
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// callEvery runs n sequential calls of fn, gap apart, failing the test on an
// error unless failing is set.
func callEvery(t testing.TB, n int, gap time.Duration, failing bool, fn func() error) {
	t.Helper()
	for i := range n {
		if i > 0 && gap > 0 {
			time.Sleep(gap)
		}
		if err := fn(); err != nil && !failing {
			t.Fatalf("call %d: %v", i, err)
		}
	}
}

// runPosts sends workers × n POSTs to url over workers workers, through the
// tooling's one load loop, bounded at a minute; the first error, if any.
func runPosts(c *warmpool.Client, url string, workers, n int) error {
	var first error
	errs := make([]error, workers)
	sum := load.Run(context.Background(), load.Spec{Workers: workers, Requests: int64(workers * n), Duration: time.Minute},
		func(context.Context, int64, int) (int, error) { return 0, post(c, url) },
		func(r load.Record) {
			if errs[r.Worker] == nil {
				errs[r.Worker] = r.Err
			}
		})
	for _, err := range errs {
		if err != nil && first == nil {
			first = err
		}
	}
	if first == nil && sum.Made != int64(workers*n) {
		first = fmt.Errorf("made %d of %d calls within a minute", sum.Made, workers*n)
	}
	return first
}

func loadPosts(t testing.TB, c *warmpool.Client, url string, workers, n int) {
	t.Helper()
	if err := runPosts(c, url, workers, n); err != nil {
		t.Fatal(err)
	}
}

// behind starts a POST that holds srv's one connection, and returns when
// the server has it.
func behind(t testing.TB, c *warmpool.Client, srv *refserver.Server) <-chan error {
	t.Helper()
	first := make(chan error, 1)
	go func() { first <- post(c, srv.URL()+"/answer") }()
	waitFor(t, "the first request to reach the server", 2*time.Second, func() bool { return srv.Stats().InFlight == 1 })
	return first
}

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// atRest waits until the client has as many connections open as the server
// sees, none in use.
func atRest(t testing.TB, c *warmpool.Client, srv *refserver.Server) {
	t.Helper()
	waitFor(t, "client and server to agree on open connections", 2*time.Second, func() bool {
		st := c.Stats()
		return st.Open == srv.Stats().Open && st.InUse == 0
	})
}

func findingRules(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Rule)
	}
	return out
}

func findingLines(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.String())
	}
	return out
}

// hostStats is a snapshot of one host, addr, with h as its figures and the
// total.
func hostStats(addr string, h warmpool.HostStats) warmpool.Stats {
	return warmpool.Stats{HostStats: h, Hosts: map[string]warmpool.HostStats{addr: h}}
}
