package warmpool

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/faultproxy"
	"github.com/warmpool/warmpool/internal/refserver"
)

// faultResponseLen is the length in bytes of the response to a raw HTTP/1.1
// request sent straight to addr.
func faultResponseLen(t testing.TB, addr, rawRequest string) int64 {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(nc, rawRequest); err != nil {
		t.Fatal(err)
	}
	cr := &faultCountingReader{r: nc}
	resp, err := http.ReadResponse(bufio.NewReader(cr), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return cr.n
}

type faultCountingReader struct {
	r io.Reader
	n int64
}

func (c *faultCountingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// 6. A connection dies while a call waits for its answer: reset by the peer
// while the server works on it, or cut in the middle of the answer's
// status line. Idempotent calls are retried and succeed; the others fail
// with an error that says the request may have run.
func faultResetMidResponse(t *testing.T) {
	// resetCycles resets every proxied connection each time all n calls
	// are in the server, cycles times.
	resetCycles := func(t *testing.T, srv *refserver.Server, p *faultproxy.Proxy, n int64, cycles int) int {
		t.Helper()
		resets := 0
		for i := range int64(cycles) {
			// All n attempts of this cycle have arrived and are in the
			// server, and the handlers of the last cycle's have ended.
			// The server holds each for 1s, so that retries spread out
			// by backoff and a loaded machine still meet there.
			waitFor(t, fmt.Sprintf("%d calls in the server", n), 10*time.Second, func() bool {
				st := srv.Stats()
				return st.Requests == n*(i+1) && st.InFlight == n
			})
			resets += p.ResetPeers()
		}
		return resets
	}
	t.Run("reset_keyed_POST", func(t *testing.T) {
		srv := startServer(t, refserver.Options{})
		p := faultProxy(t, srv.Addr())
		cfg := faultConfig()
		cfg.RetryBudgetMinPerSecond = 100 // the budget is not under test here
		c := newClient(t, srv, cfg, WithIdempotencyKeys())
		url := "http://" + p.Addr() + "/answer?delay=1s"
		done := make(chan []faultCall, 1)
		go func() {
			done <- faultCalls(t, 8, 8*3, 20*time.Second, nil, nil, func(int) error { return post(c, url) })
		}()
		// Three resets, each hitting every worker's first call: the fourth
		// attempt, the last max_retries allows, gets through.
		resets := resetCycles(t, srv, p, 8, cfg.MaxRetries)
		calls := <-done
		ft, st, cs := faultCount(calls), srv.Stats(), c.Stats()
		faultSummary(t, fmt.Sprintf("reset keyed POST (%d resets)", resets), ft, st, cs)
		if ft.failed != 0 || ft.ok != 24 {
			t.Errorf("%d ok, %d failed, want 24 ok: %v", ft.ok, ft.failed, ft.only())
		}
		if st.Executions != int64(ft.ok) {
			t.Errorf("server executed %d keyed POSTs for %d successes, want one each", st.Executions, ft.ok)
		}
		if cs.Retries < 24 {
			t.Errorf("client retried %d times, want ≥ 24 (3 resets × 8 calls)", cs.Retries)
		}
	})
	t.Run("reset_plain_POST", func(t *testing.T) {
		srv := startServer(t, refserver.Options{})
		p := faultProxy(t, srv.Addr())
		c := newClient(t, srv, faultConfig())
		url := "http://" + p.Addr() + "/answer?delay=1s"
		done := make(chan []faultCall, 1)
		go func() { done <- faultCalls(t, 8, 8, 20*time.Second, nil, nil, func(int) error { return post(c, url) }) }()
		resets := resetCycles(t, srv, p, 8, 1)
		calls := <-done
		ft, st, cs := faultCount(calls), srv.Stats(), c.Stats()
		faultSummary(t, fmt.Sprintf("reset plain POST (%d resets)", resets), ft, st, cs)
		if ft.failed != 8 {
			t.Errorf("%d of 8 plain POSTs failed, want 8", ft.failed)
		}
		if err := ft.only("reset", "eof"); err != nil {
			t.Error(err)
		}
		faultCheckMayHaveRun(t, calls)
		if st.Executions > int64(ft.ok+ft.failed) {
			t.Errorf("server executed %d plain POSTs for %d calls", st.Executions, ft.sent)
		}
	})
	// The cut lets each connection carry one whole answer and 20 bytes of
	// the next, so every call on a reused connection loses its answer in
	// its headers: net/http reports them malformed. Each worker has its own client, so that the retry
	// of a cut call always gets a fresh connection.
	cutLoad := func(t *testing.T, srv *refserver.Server, p *faultproxy.Proxy, cfg Config, perWorker int, call func(c *Client) error) []faultCall {
		cfg.RetryBudgetMinPerSecond = 100 // every other call retries: the budget is not under test here
		clients := make([]*Client, 4)
		for i := range clients {
			clients[i] = newClient(t, srv, cfg)
		}
		return faultCalls(t, 4, 4*perWorker, 20*time.Second, nil, nil, func(i int) error { return call(clients[i%4]) })
	}
	t.Run("cut_GET", func(t *testing.T) {
		srv := startServer(t, refserver.Options{})
		p := faultProxy(t, srv.Addr())
		n := faultResponseLen(t, srv.Addr(), "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		if err := p.AddToxic(faultproxy.Cut("cut", faultproxy.Downstream, n+20)); err != nil {
			t.Fatal(err)
		}
		url := "http://" + p.Addr() + "/healthz"
		calls := cutLoad(t, srv, p, faultConfig(), 20, func(c *Client) error { return faultGet(context.Background(), c, url) })
		ft := faultCount(calls)
		t.Logf("cut GET: %s | proxy accepted %d connections | response %d bytes, cut at %d", ft, p.Accepted(), n, n+20)
		if ft.failed != 0 {
			t.Errorf("%d GETs failed, want 0: %v", ft.failed, ft.only())
		}
		// Per worker: the first call on a fresh connection, then every call
		// cut once and retried on a fresh one.
		if got := p.Accepted(); got != 4*20 {
			t.Errorf("proxy accepted %d connections, want %d (one per call: every reused connection was cut)", got, 4*20)
		}
	})
	t.Run("cut_plain_POST", func(t *testing.T) {
		srv := startServer(t, refserver.Options{})
		p := faultProxy(t, srv.Addr())
		body := `{"question":"what does pooling buy?"}`
		n := faultResponseLen(t, srv.Addr(), fmt.Sprintf("POST /answer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
		if err := p.AddToxic(faultproxy.Cut("cut", faultproxy.Downstream, n+20)); err != nil {
			t.Fatal(err)
		}
		url := "http://" + p.Addr() + "/answer"
		calls := cutLoad(t, srv, p, faultConfig(), 10, func(c *Client) error { return post(c, url) })
		ft, st := faultCount(calls), srv.Stats()
		t.Logf("cut plain POST: %s | server executed %d | response %d bytes, cut at %d", ft, st.Executions-1, n, n+20)
		// Per worker, calls alternate: fresh connection, served; reused
		// connection, cut, not retried.
		if ft.ok != 20 || ft.failed != 20 {
			t.Errorf("%d ok, %d failed, want 20 and 20", ft.ok, ft.failed)
		}
		if err := ft.only("malformed"); err != nil {
			t.Error(err)
		}
		faultCheckMayHaveRun(t, calls)
		// One execution came from faultResponseLen; each call ran once.
		if got := st.Executions - 1; got != int64(ft.sent) {
			t.Errorf("server executed %d plain POSTs for %d calls, want one each, and never a second", got, ft.sent)
		}
	})
}
