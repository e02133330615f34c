package warmpool

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/faultproxy"
	"github.com/warmpool/warmpool/internal/refserver"
)

// 8. The backend answers 503 to everything for 3 s: the retry budget keeps
// the load it sees near what callers ask for.
func faultRetryStorm(t *testing.T) {
	const workers = 8
	srv := startServer(t, refserver.Options{})
	cfg := faultConfig()
	cfg.RetryBackoffFactor = 0.01
	cfg.RetryMaxBackoff = 50 * time.Millisecond
	born := time.Now() // the budget's floor accrues from the client's start
	c := newClient(t, srv, cfg)
	url := srv.URL() + "/answer"
	srv.SetStatus(http.StatusServiceUnavailable)
	start := time.Now()
	calls := faultCalls(t, workers, workers*10_000, 3*time.Second, faultPause(5*time.Millisecond, 5*time.Millisecond), nil, func(int) error { return post(c, url) })
	storm, ran := time.Since(start), time.Since(born)
	ft, st, cs := faultCount(calls), srv.Stats(), c.Stats()
	faultSummary(t, "retry storm", ft, st, cs)
	if err := ft.only("status_503"); err != nil {
		t.Error(err)
	}
	// Attempts reaching the server: the calls, plus the budget's share of
	// them, plus its floor for each second (the floor counts from the
	// client's start, with one second in hand). The budget is lock-free:
	// withdrawals racing at its limit may overshoot it by one per worker.
	secs := ran.Seconds() + 1
	allowed := (1+cfg.RetryBudgetPercent/100)*float64(ft.sent) + cfg.RetryBudgetMinPerSecond*secs + workers
	t.Logf("retry storm: %d calls in %s sent %d requests to the server (%.2f per call), budget allows %.0f",
		ft.sent, storm.Round(time.Millisecond), st.Requests, float64(st.Requests)/float64(ft.sent), allowed)
	if float64(st.Requests) > allowed {
		t.Errorf("server saw %d requests for %d calls in %s, want ≤ %.0f", st.Requests, ft.sent, storm.Round(time.Millisecond), allowed)
	}
	if cs.BudgetRefusals == 0 {
		t.Error("the budget refused no retry")
	}
	srv.SetStatus(0)
	before := srv.Stats().Requests
	recovered := time.Now()
	after := faultCalls(t, 8, 8*5, 5*time.Second, nil, nil, func(int) error { return post(c, url) })
	fa := faultCount(after)
	t.Logf("after recovery: %s, first call done %s after", fa, faultFirstEnd(after).Sub(recovered).Round(time.Millisecond))
	if fa.failed != 0 {
		t.Errorf("after recovery %d calls failed: %v", fa.failed, fa.only())
	}
	if got := srv.Stats().Requests - before; got != int64(fa.sent) {
		t.Errorf("after recovery the server saw %d requests for %d calls, want one each (success at once)", got, fa.sent)
	}
}

func faultFirstEnd(calls []faultCall) time.Time {
	var first time.Time
	for _, c := range calls {
		if first.IsZero() || c.end.Before(first) {
			first = c.end
		}
	}
	return first
}

// 9. 429 with Retry-After: 1. The retry waits the second the server asked
// for; a caller's deadline shorter than that ends the call at once.
func faultRetryAfter(t *testing.T) {
	// server answers 429 with Retry-After: retryAfter to the first tooMany
	// requests, then 200, and records when each arrived.
	server := func(t *testing.T, retryAfter string, tooMany int) (*httptest.Server, func() []time.Time) {
		var (
			mu       sync.Mutex
			arrivals []time.Time
		)
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			arrivals = append(arrivals, time.Now())
			n := len(arrivals)
			mu.Unlock()
			if n <= tooMany {
				w.Header().Set("Retry-After", retryAfter)
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			_, _ = io.WriteString(w, "ok")
		}))
		t.Cleanup(ts.Close)
		return ts, func() []time.Time {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(arrivals)
		}
	}
	client := func(t *testing.T, cfg Config, hooks Hooks) *Client {
		c, err := New(cfg, WithHooks(hooks))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	t.Run("waits_as_asked", func(t *testing.T) {
		ts, arrivals := server(t, "1", 1)
		var mu sync.Mutex
		var retries []RetryInfo
		cfg := faultConfig()
		cfg.RetryMaxBackoff = 10 * time.Second // Retry-After may ask up to that
		c := client(t, cfg, Hooks{Retry: func(ri RetryInfo) { mu.Lock(); retries = append(retries, ri); mu.Unlock() }})
		if err := faultGet(context.Background(), c, ts.URL); err != nil {
			t.Fatalf("GET: %v", err)
		}
		a := arrivals()
		if len(a) != 2 {
			t.Fatalf("server saw %d requests, want 2", len(a))
		}
		gap := a[1].Sub(a[0])
		t.Logf("retry after: %d requests, next attempt %s after the 429, retries %+v", len(a), gap.Round(time.Millisecond), retries)
		if gap < time.Second {
			t.Errorf("the retry came %s after the 429, want ≥ 1s (Retry-After: 1)", gap)
		}
		if len(retries) != 1 || retries[0].Wait != time.Second || retries[0].StatusCode != http.StatusTooManyRequests {
			t.Errorf("Retry hook saw %+v, want one retry after a 429 waiting 1s", retries)
		}
	})
	t.Run("deadline_shorter_than_retry_after", func(t *testing.T) {
		ts, arrivals := server(t, "1", 100)
		cfg := faultConfig()
		cfg.RetryMaxBackoff = 10 * time.Second
		c := client(t, cfg, Hooks{})
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := faultGet(ctx, c, ts.URL)
		d := time.Since(start)
		t.Logf("retry after past the deadline: ended after %s with %v", d.Round(time.Millisecond), err)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, want a deadline error", err)
		}
		var re *RetryError
		if !errors.As(err, &re) || re.LastStatus != http.StatusTooManyRequests {
			t.Errorf("got %v, want a *RetryError with last status 429", err)
		}
		if d > 300*time.Millisecond {
			t.Errorf("call ended after %s, want at once, before its 300ms deadline and well before the 1s Retry-After", d)
		}
		if n := len(arrivals()); n != 1 {
			t.Errorf("server saw %d requests, want 1", n)
		}
	})
	t.Run("retry_after_beyond_max_backoff", func(t *testing.T) {
		ts, arrivals := server(t, "60", 100)
		cfg := faultConfig()
		cfg.RetryMaxBackoff = 10 * time.Second
		c := client(t, cfg, Hooks{})
		start := time.Now()
		err := faultGet(context.Background(), c, ts.URL)
		var se *StatusError
		if !errors.As(err, &se) || se.StatusCode != http.StatusTooManyRequests {
			t.Errorf("got %v, want the 429", err)
		}
		if n := len(arrivals()); n != 1 || time.Since(start) > time.Second {
			t.Errorf("server saw %d requests in %s, want 1 at once (Retry-After beyond retry_max_backoff stops)", n, time.Since(start))
		}
	})
}

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
