package warmpool

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/faultproxy"
	"github.com/warmpool/warmpool/internal/refserver"
)

// TestFaults runs the client through the faults of issue #4, each under a
// bounded load, and checks counts: calls made, succeeded, failed by kind,
// and what the server executed. Each scenario logs a one-line summary.
// Wall-clock bounds are generous; where a bound is the point of the
// scenario (timeouts), the allowance for a loaded machine is named.
func TestFaults(t *testing.T) {
	t.Run("01_stale_pooled_connection", faultStaleConnection)
	t.Run("02_network_interruption", faultNetworkInterruption)
	t.Run("03_backend_restart", faultBackendRestart)
	t.Run("04_black_hole", faultBlackHole)
	t.Run("05_slow_server", faultSlowServer)
	t.Run("06_reset_mid_response", faultResetMidResponse)
	t.Run("07_server_connection_limit", faultServerConnLimit)
	t.Run("08_retry_storm", faultRetryStorm)
	t.Run("09_retry_after", faultRetryAfter)
	t.Run("10_long_running_connections", faultLongRunning)
	t.Run("11_overload", faultOverload)
}

// faultSchedSlack is what a bound on elapsed time allows on top of the
// timeout under test, for a loaded 2-core machine running -race: timers
// firing late, goroutines waiting to be scheduled.
const faultSchedSlack = 100 * time.Millisecond

// faultCall is one call made under load.
type faultCall struct {
	start, end time.Time
	err        error
}

func (c faultCall) dur() time.Duration { return c.end.Sub(c.start) }

// faultLoad runs workers, each making calls to fn one after the other, with
// pause() between them (nil: none), until it made perWorker calls, d has
// passed since the start, or stop is closed (nil: never).
func faultLoad(workers, perWorker int, d time.Duration, pause func() time.Duration, stop <-chan struct{}, fn func(w int) error) []faultCall {
	deadline := time.Now().Add(d)
	var (
		mu    sync.Mutex
		calls []faultCall
		wg    sync.WaitGroup
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perWorker {
				select {
				case <-stop:
					return
				default:
				}
				if time.Now().After(deadline) {
					return
				}
				start := time.Now()
				err := fn(w)
				c := faultCall{start: start, end: time.Now(), err: err}
				mu.Lock()
				calls = append(calls, c)
				mu.Unlock()
				if pause != nil {
					time.Sleep(pause())
				}
			}
		}()
	}
	wg.Wait()
	return calls
}

// faultPause returns a pause drawn uniformly from [lo, hi].
func faultPause(lo, hi time.Duration) func() time.Duration {
	return func() time.Duration { return lo + rand.N(hi-lo+1) }
}

// faultKind names the kind of a call's outcome, for counts.
func faultKind(err error) string {
	var (
		se *StatusError
		re *RetryError
	)
	kind := "other"
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrPoolTimeout):
		kind = "pool_timeout"
	case errors.Is(err, ErrClosed):
		kind = "closed"
	case errors.As(err, &se):
		kind = fmt.Sprintf("status_%d", se.StatusCode)
	case errors.Is(err, context.DeadlineExceeded):
		kind = "deadline"
	case errors.Is(err, syscall.ECONNREFUSED):
		kind = "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		kind = "reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), faultServerClosedIdle(err):
		kind = "eof"
	case errors.As(err, new(textproto.ProtocolError)):
		kind = "malformed" // a response cut short in its headers
	case errors.Is(err, net.ErrClosed):
		kind = "closed_conn" // the client's own end was closed under the request
	}
	if errors.As(err, &re) && re.BudgetRefused {
		kind += "+budget"
	}
	return kind
}

// faultServerClosedIdle matches net/http's unexported error for a pooled
// connection found closed by the server; it has no type or sentinel, so
// only its text tells it apart.
func faultServerClosedIdle(err error) bool {
	return strings.Contains(err.Error(), "http: server closed idle connection")
}

// faultTally counts calls by outcome.
type faultTally struct {
	sent, ok, failed int
	kinds            map[string]int
	first            map[string]error // the first error of each kind
	maxDur           time.Duration
}

func faultCount(calls []faultCall) faultTally {
	ft := faultTally{kinds: map[string]int{}, first: map[string]error{}}
	for _, c := range calls {
		ft.sent++
		ft.maxDur = max(ft.maxDur, c.dur())
		k := faultKind(c.err)
		if c.err == nil {
			ft.ok++
			continue
		}
		ft.failed++
		ft.kinds[k]++
		if ft.first[k] == nil {
			ft.first[k] = c.err
		}
	}
	return ft
}

func (ft faultTally) String() string {
	var kinds []string
	for _, k := range slices.Sorted(maps.Keys(ft.kinds)) {
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, ft.kinds[k]))
	}
	return fmt.Sprintf("sent=%d ok=%d failed=%d {%s} max=%s", ft.sent, ft.ok, ft.failed, strings.Join(kinds, " "), ft.maxDur.Round(time.Millisecond))
}

// only reports the kinds of failure outside allowed.
func (ft faultTally) only(allowed ...string) error {
	var bad []string
	for k, n := range ft.kinds {
		if !slices.Contains(allowed, k) {
			bad = append(bad, fmt.Sprintf("%d %s (first: %v)", n, k, ft.first[k]))
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		return fmt.Errorf("unexpected failures: %s", strings.Join(bad, "; "))
	}
	return nil
}

// faultSummary is the one line a scenario logs.
func faultSummary(t testing.TB, name string, ft faultTally, srv refserver.Stats, cs Stats) {
	t.Helper()
	t.Logf("%s: %s | server: executed=%d deduplicated=%d requests=%d accepted=%d refused=%d peak_open=%d | client: created=%d retries=%d budget_refusals=%d pool_timeouts=%d closed_by=%+v",
		name, ft, srv.Executions, srv.Deduplicated, srv.Requests, srv.Accepted, srv.Refused, srv.PeakOpen,
		cs.Created, cs.Retries, cs.BudgetRefusals, cs.PoolTimeouts, cs.ClosedBy)
}

// faultGet sends GET url and reads the body to the end; a non-2xx status is
// a *StatusError, as PostJSON returns.
func faultGet(ctx context.Context, c *Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return &StatusError{StatusCode: resp.StatusCode, Method: req.Method, URL: url}
	}
	return nil
}

// faultProxy starts a fault proxy in front of upstream for the test.
func faultProxy(t testing.TB, upstream string) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.New(upstream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("fault proxy: %v", err)
		}
	})
	return p
}

// faultConfig is the base of every scenario: HTTP/1.1, short backoffs, so
// that counts come from many calls in little time.
func faultConfig() Config {
	cfg := DefaultConfig()
	cfg.EnableHTTP2 = false
	cfg.RetryBackoffFactor = 0.02
	cfg.RetryMaxBackoff = 200 * time.Millisecond
	cfg.RequestTimeout = 2 * time.Second
	cfg.ConnectionTimeout = time.Second
	return cfg
}

// 1. The server closes idle connections after 50 ms; the client, which
// keeps them 30 s, calls every 40–60 ms, so it often sends on a connection
// the server is closing. Idempotent calls must not fail; plain POSTs may,
// with an error, but are never run twice.
func faultStaleConnection(t *testing.T) {
	modes := []struct {
		name  string
		keyed bool
		call  func(c *Client, base string) error
	}{
		{"GET", false, func(c *Client, base string) error { return faultGet(context.Background(), c, base+"/healthz") }},
		{"keyed_POST", true, func(c *Client, base string) error { return post(c, base+"/answer") }},
		{"plain_POST", false, func(c *Client, base string) error { return post(c, base+"/answer") }},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, refserver.Options{IdleTimeout: 50 * time.Millisecond})
			cfg := faultConfig()
			cfg.KeepaliveExpiry = 30 * time.Second
			var opts []Option
			if m.keyed {
				opts = append(opts, WithIdempotencyKeys())
			}
			c := newClient(t, srv, cfg, opts...)
			calls := faultLoad(8, 40, 2*time.Second, faultPause(40*time.Millisecond, 60*time.Millisecond), nil,
				func(int) error { return m.call(c, srv.URL()) })
			ft, st, cs := faultCount(calls), srv.Stats(), c.Stats()
			faultSummary(t, "stale "+m.name, ft, st, cs)

			if cs.ClosedBy.Server == 0 || st.Accepted <= 8 {
				t.Errorf("the server closed %d connections, accepted %d: the scenario did not exercise stale connections", cs.ClosedBy.Server, st.Accepted)
			}
			switch m.name {
			case "GET":
				if ft.failed != 0 {
					t.Errorf("%d idempotent calls failed, want 0: %v", ft.failed, ft.only())
				}
			case "keyed_POST":
				if ft.failed != 0 {
					t.Errorf("%d keyed POSTs failed, want 0: %v", ft.failed, ft.only())
				}
				if st.Executions != int64(ft.ok) {
					t.Errorf("server executed %d keyed POSTs for %d successes, want exactly one execution each", st.Executions, ft.ok)
				}
			case "plain_POST":
				if st.Executions < int64(ft.ok) || st.Executions > int64(ft.ok+ft.failed) {
					t.Errorf("server executed %d plain POSTs for %d successes and %d errors, want between %d and %d (never a silent duplicate)",
						st.Executions, ft.ok, ft.failed, ft.ok, ft.ok+ft.failed)
				}
				faultCheckMayHaveRun(t, calls)
			}
		})
	}
}

// faultOutage is load through an outage that out starts and back ends.
type faultOutage struct {
	calls         []faultCall
	outAt, backAt time.Time
}

// faultRunOutage runs 8 workers calling fn every 10 ms: 500 ms of normal
// service, then out(), down for the outage, back(), and 700 ms more.
func faultRunOutage(t *testing.T, down time.Duration, fn func(w int) error, out, back func()) faultOutage {
	t.Helper()
	var o faultOutage
	stop := make(chan struct{})
	done := make(chan []faultCall, 1)
	go func() {
		done <- faultLoad(8, 10_000, 10*time.Second, faultPause(10*time.Millisecond, 10*time.Millisecond), stop, fn)
	}()
	time.Sleep(500 * time.Millisecond)
	o.outAt = time.Now()
	out()
	time.Sleep(down)
	back()
	o.backAt = time.Now()
	time.Sleep(700 * time.Millisecond)
	close(stop)
	o.calls = <-done
	return o
}

// check applies the expectations common to an outage: service before and
// after, fast failures during, recovery within one backoff, no call that
// hangs.
func (o faultOutage) check(t *testing.T, cfg Config) {
	t.Helper()
	var before, during, after []faultCall
	firstOK := time.Duration(-1)
	for _, c := range o.calls {
		switch {
		case c.end.Before(o.outAt):
			before = append(before, c)
		case c.start.After(o.backAt):
			after = append(after, c)
		default:
			during = append(during, c)
		}
		if c.err == nil && c.end.After(o.backAt) {
			if d := c.end.Sub(o.backAt); firstOK < 0 || d < firstOK {
				firstOK = d
			}
		}
	}
	fb, fd, fa := faultCount(before), faultCount(during), faultCount(after)
	t.Logf("outage phases: before {%s} | during {%s} | after {%s} | first success %s after recovery",
		fb, fd, fa, firstOK.Round(time.Millisecond))
	if fb.failed != 0 {
		t.Errorf("%d calls failed before the outage: %v", fb.failed, fb.only())
	}
	if fa.failed != 0 || fa.ok == 0 {
		t.Errorf("after recovery: %d ok, %d failed, want all ok: %v", fa.ok, fa.failed, fa.only())
	}
	if fd.failed == 0 && fd.ok == 0 {
		t.Error("no call overlapped the outage")
	}
	// During the outage a call fails fast: dials are refused at once, so
	// it spends its time in backoffs, never in a hung attempt.
	hang := cfg.RequestTimeout + time.Duration(cfg.MaxRetries)*cfg.RetryMaxBackoff + faultSchedSlack
	if fd.maxDur > hang {
		t.Errorf("a call during the outage took %s, want ≤ %s (request_timeout + max_retries × retry_max_backoff)", fd.maxDur, hang)
	}
	if err := fd.only("refused", "eof", "reset", "malformed", "refused+budget", "eof+budget", "reset+budget", "malformed+budget"); err != nil {
		t.Errorf("during the outage: %v", err)
	}
	// A call waiting to retry when service returns gets it at its next
	// attempt: within one backoff.
	if within := cfg.RetryMaxBackoff + faultSchedSlack; firstOK < 0 || firstOK > within {
		t.Errorf("first success %s after recovery, want within one backoff (%s)", firstOK, within)
	}
}

// 2. The network between client and server goes away for 2 s.
func faultNetworkInterruption(t *testing.T) {
	srv := startServer(t, refserver.Options{})
	p := faultProxy(t, srv.Addr())
	cfg := faultConfig()
	cfg.RequestTimeout = time.Second
	c := newClient(t, srv, cfg, WithIdempotencyKeys())
	base := "http://" + p.Addr()
	var (
		mu         sync.Mutex
		keyedCalls []faultCall
	)
	o := faultRunOutage(t, 2*time.Second, func(w int) error {
		if w%2 == 0 {
			return faultGet(context.Background(), c, base+"/healthz")
		}
		start := time.Now()
		err := post(c, base+"/answer")
		mu.Lock()
		keyedCalls = append(keyedCalls, faultCall{start: start, end: time.Now(), err: err})
		mu.Unlock()
		return err
	}, p.Disable, func() {
		if err := p.Enable(); err != nil {
			t.Errorf("enable proxy: %v", err)
		}
	})
	ft, st, cs := faultCount(o.calls), srv.Stats(), c.Stats()
	faultSummary(t, "network interruption", ft, st, cs)
	o.check(t, cfg)
	keyed := faultCount(keyedCalls)
	if st.Executions < int64(keyed.ok) || st.Executions > int64(keyed.ok+keyed.failed) {
		t.Errorf("server executed %d keyed POSTs for %d successes and %d failures, want each at most once", st.Executions, keyed.ok, keyed.failed)
	}
	faultCheckBudget(t, cs, ft.sent, o.backAt.Add(700*time.Millisecond).Sub(o.outAt.Add(-500*time.Millisecond)), cfg)
}

// faultCheckBudget checks the retries stay within the budget: percent of
// the calls plus the floor for the seconds the client ran.
func faultCheckBudget(t *testing.T, cs Stats, calls int, ran time.Duration, cfg Config) {
	t.Helper()
	allowed := cfg.RetryBudgetPercent/100*float64(calls) + cfg.RetryBudgetMinPerSecond*(ran.Seconds()+2)
	if float64(cs.Retries) > allowed {
		t.Errorf("%d retries for %d calls in %s, budget allows %.0f", cs.Retries, calls, ran.Round(time.Millisecond), allowed)
	}
}

// 3. The backend stops and a new one starts on the same port 1 s later.
func faultBackendRestart(t *testing.T) {
	srv := startServer(t, refserver.Options{})
	addr := srv.Addr()
	cfg := faultConfig()
	cfg.RequestTimeout = time.Second
	c := newClient(t, srv, cfg)
	var restarted atomic.Pointer[refserver.Server]
	o := faultRunOutage(t, time.Second, func(int) error {
		return faultGet(context.Background(), c, "http://"+addr+"/healthz")
	}, func() { srv.Close() }, func() {
		// The old port is free again; SO_REUSEADDR lets a new listener
		// take it despite TIME_WAIT. Retry briefly in case of a race.
		var err error
		for range 20 {
			var s *refserver.Server
			if s, err = refserver.New(refserver.Options{Addr: addr}); err == nil {
				restarted.Store(s)
				t.Cleanup(func() { s.Close() })
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Errorf("restart on %s: %v", addr, err)
	})
	if restarted.Load() == nil {
		t.FailNow()
	}
	ft, cs := faultCount(o.calls), c.Stats()
	st := restarted.Load().Stats()
	faultSummary(t, "backend restart", ft, st, cs)
	o.check(t, cfg)
	faultCheckBudget(t, cs, ft.sent, 2200*time.Millisecond, cfg)
}

// faultBounded checks each call failed with a deadline error within limit,
// the timeout under test plus 10 % and the scheduling allowance.
func faultBounded(t *testing.T, calls []faultCall, timeout time.Duration) {
	t.Helper()
	limit := timeout + timeout/10 + faultSchedSlack
	var durs []time.Duration
	for _, c := range calls {
		durs = append(durs, c.dur())
		if !errors.Is(c.err, context.DeadlineExceeded) {
			t.Errorf("call got %v, want a deadline error", c.err)
		}
		if c.dur() > limit {
			t.Errorf("call failed after %s, want ≤ %s (timeout %s + 10%% + %s)", c.dur(), limit, timeout, faultSchedSlack)
		}
	}
	slices.Sort(durs)
	if len(durs) > 0 {
		t.Logf("failure times: min %s, median %s, max %s for a timeout of %s",
			durs[0].Round(time.Millisecond), durs[len(durs)/2].Round(time.Millisecond), durs[len(durs)-1].Round(time.Millisecond), timeout)
	}
}

// 4. A black hole: the proxy accepts, and nothing gets through.
func faultBlackHole(t *testing.T) {
	t.Run("request_timeout", func(t *testing.T) {
		srv := startServer(t, refserver.Options{})
		p := faultProxy(t, srv.Addr())
		cfg := faultConfig()
		cfg.MaxRetries = 0 // one attempt per call: its own time is measured
		cfg.RequestTimeout = 300 * time.Millisecond
		c := newClient(t, srv, cfg)
		url := "http://" + p.Addr() + "/healthz"
		// Warm the pool first: the black hole swallows pooled and new
		// connections alike.
		if _, _, other, err := countErrs(parallel(8, func(int) error { return faultGet(context.Background(), c, url) }), nil); other > 0 {
			t.Fatalf("warm-up: %v", err)
		}
		if err := p.AddToxic(faultproxy.Timeout("hole", faultproxy.Upstream)); err != nil {
			t.Fatal(err)
		}
		calls := faultLoad(8, 3, 5*time.Second, nil, nil, func(int) error { return faultGet(context.Background(), c, url) })
		ft, cs := faultCount(calls), c.Stats()
		faultSummary(t, "black hole (request_timeout)", ft, srv.Stats(), cs)
		if ft.failed != 24 {
			t.Errorf("%d of %d calls failed, want all 24", ft.failed, ft.sent)
		}
		faultBounded(t, calls, cfg.RequestTimeout)
	})
	t.Run("connection_timeout", func(t *testing.T) {
		// With TLS the black hole stops the handshake, which warmpool's
		// dialer bounds by connection_timeout.
		srv := startServer(t, refserver.Options{Proto: "tls-h1"})
		p := faultProxy(t, srv.Addr())
		if err := p.AddToxic(faultproxy.Timeout("hole", faultproxy.Upstream)); err != nil {
			t.Fatal(err)
		}
		cfg := faultConfig()
		cfg.MaxRetries = 0
		cfg.ConnectionTimeout = 300 * time.Millisecond
		cfg.RequestTimeout = 5 * time.Second
		c := newClient(t, srv, cfg)
		url := "https://" + p.Addr() + "/healthz"
		calls := faultLoad(8, 3, 5*time.Second, nil, nil, func(int) error { return faultGet(context.Background(), c, url) })
		ft, cs := faultCount(calls), c.Stats()
		faultSummary(t, "black hole (connection_timeout)", ft, srv.Stats(), cs)
		if ft.failed != 24 || cs.DialFailures.Timeout != 24 {
			t.Errorf("%d of %d calls failed, %d dial timeouts; want 24 and 24", ft.failed, ft.sent, cs.DialFailures.Timeout)
		}
		faultBounded(t, calls, cfg.ConnectionTimeout)
	})
}

// 5. The server answers slower than request_timeout: the call fails with a
// deadline error, and its connection, which may still deliver the late
// answer, is not reused.
func faultSlowServer(t *testing.T) {
	srv := startServer(t, refserver.Options{})
	p := faultProxy(t, srv.Addr())
	cfg := faultConfig()
	cfg.MaxRetries = 0
	cfg.RequestTimeout = 300 * time.Millisecond
	c := newClient(t, srv, cfg)
	url := "http://" + p.Addr() + "/healthz"
	if err := faultGet(context.Background(), c, url); err != nil {
		t.Fatal(err)
	}
	if err := p.AddToxic(faultproxy.Latency("slow", faultproxy.Downstream, time.Second)); err != nil {
		t.Fatal(err)
	}
	calls := faultLoad(4, 3, 5*time.Second, nil, nil, func(int) error { return faultGet(context.Background(), c, url) })
	ft := faultCount(calls)
	faultBounded(t, calls, cfg.RequestTimeout)
	if ft.failed != 12 {
		t.Errorf("%d of %d calls failed, want all 12", ft.failed, ft.sent)
	}
	waitFor(t, "timed-out connections to close", 3*time.Second, func() bool { return c.Stats().Open == 0 })
	cs := c.Stats()
	// The one warm connection may serve one slow call; after a timeout no
	// connection serves again.
	if cs.Reused > 1 || cs.Created < 12 {
		t.Errorf("client created %d connections and reused %d for 12 timed-out calls, want ≥ 12 and ≤ 1 (the warm one)", cs.Created, cs.Reused)
	}
	if err := p.RemoveToxic("slow"); err != nil {
		t.Fatal(err)
	}
	if err := faultGet(context.Background(), c, url); err != nil {
		t.Errorf("after the latency is gone: %v", err)
	}
	st := srv.Stats()
	faultSummary(t, "slow server", ft, st, c.Stats())
	if st.Accepted != c.Stats().Created {
		t.Errorf("server accepted %d connections, client created %d, want equal (one upstream connection per client connection)", st.Accepted, c.Stats().Created)
	}
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
			waitFor(t, fmt.Sprintf("%d calls in the server", n), 5*time.Second, func() bool {
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
		url := "http://" + p.Addr() + "/answer?delay=300ms"
		done := make(chan []faultCall, 1)
		go func() { done <- faultLoad(8, 3, 20*time.Second, nil, nil, func(int) error { return post(c, url) }) }()
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
		url := "http://" + p.Addr() + "/answer?delay=300ms"
		done := make(chan []faultCall, 1)
		go func() { done <- faultLoad(8, 1, 20*time.Second, nil, nil, func(int) error { return post(c, url) }) }()
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
		return faultLoad(4, perWorker, 20*time.Second, nil, nil, func(w int) error { return call(clients[w]) })
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

// faultCheckMayHaveRun checks a failed non-idempotent call was not retried
// and its error is classified as "may have run".
func faultCheckMayHaveRun(t *testing.T, calls []faultCall) {
	t.Helper()
	for _, c := range calls {
		if c.err == nil {
			continue
		}
		var re *RetryError
		if errors.As(c.err, &re) {
			t.Errorf("a plain POST was retried after it may have run: %v", c.err)
			return
		}
		if got := classify(nil, c.err); got != retryIdempot {
			t.Errorf("classify(%v) = %v, want retryIdempot (may have run)", c.err, got)
			return
		}
	}
}

// faultPeakOpen samples c's open connections every 2 ms until stop.
func faultPeakOpen(c *Client, stop <-chan struct{}) <-chan int64 {
	out := make(chan int64, 1)
	go func() {
		var peak int64
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			peak = max(peak, c.Stats().Open)
			select {
			case <-stop:
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// 7. The server takes at most N connections and refuses more.
func faultServerConnLimit(t *testing.T) {
	t.Run("client_limit_equals_server_limit", func(t *testing.T) {
		srv := startServer(t, refserver.Options{MaxConns: 4, Delay: 100 * time.Millisecond})
		cfg := faultConfig()
		cfg.MaxConnections = 4
		cfg.MaxKeepaliveConnections = 4
		cfg.PoolTimeout = 200 * time.Millisecond
		c := newClient(t, srv, cfg)
		stop := make(chan struct{})
		peak := faultPeakOpen(c, stop)
		calls := faultLoad(16, 8, 3*time.Second, nil, nil, func(int) error { return post(c, srv.URL()+"/answer") })
		close(stop)
		ft, st, cs := faultCount(calls), srv.Stats(), c.Stats()
		faultSummary(t, "server limit 4, client limit 4", ft, st, cs)
		if p := <-peak; p > 4 {
			t.Errorf("client had %d connections open, max_connections is 4", p)
		}
		if st.PeakOpen > 4 || st.Refused != 0 {
			t.Errorf("server peak open %d, refused %d; want ≤ 4 and 0", st.PeakOpen, st.Refused)
		}
		if err := ft.only("pool_timeout"); err != nil {
			t.Error(err)
		}
		if ft.ok == 0 || ft.kinds["pool_timeout"] == 0 {
			t.Errorf("%d ok and %d pool timeouts, want some of each", ft.ok, ft.kinds["pool_timeout"])
		}
		for _, c := range calls {
			if errors.Is(c.err, ErrPoolTimeout) && (c.dur() < cfg.PoolTimeout || c.dur() > cfg.PoolTimeout+faultSchedSlack+cfg.PoolTimeout/10) {
				t.Errorf("a call gave up waiting for a connection after %s, pool_timeout is %s", c.dur(), cfg.PoolTimeout)
				break
			}
		}
	})
	t.Run("client_limit_above_server_limit", func(t *testing.T) {
		srv := startServer(t, refserver.Options{MaxConns: 2, Delay: 100 * time.Millisecond})
		cfg := faultConfig()
		cfg.MaxConnections = 4
		cfg.MaxKeepaliveConnections = 4
		cfg.PoolTimeout = 300 * time.Millisecond
		c := newClient(t, srv, cfg, WithIdempotencyKeys())
		stop := make(chan struct{})
		peak := faultPeakOpen(c, stop)
		calls := faultLoad(8, 5, 3*time.Second, nil, nil, func(int) error { return post(c, srv.URL()+"/answer") })
		close(stop)
		ft, st, cs := faultCount(calls), srv.Stats(), c.Stats()
		faultSummary(t, "server limit 2, client limit 4", ft, st, cs)
		if p := <-peak; p > 4 {
			t.Errorf("client had %d connections open, max_connections is 4", p)
		}
		if st.PeakOpen > 2 || st.Refused == 0 {
			t.Errorf("server peak open %d, refused %d; want ≤ 2 and some refused", st.PeakOpen, st.Refused)
		}
		if ft.ok == 0 {
			t.Error("no call succeeded")
		}
		// A refused connection is closed by the server at once: the
		// request sees EOF or a reset, or net/http closes its end first.
		if err := ft.only("pool_timeout", "eof", "reset", "closed_conn", "eof+budget", "reset+budget", "closed_conn+budget"); err != nil {
			t.Error(err)
		}
		if st.Executions > int64(ft.ok+ft.failed) || st.Executions < int64(ft.ok) {
			t.Errorf("server executed %d keyed POSTs for %d ok and %d failed", st.Executions, ft.ok, ft.failed)
		}
		bound := cfg.PoolTimeout + time.Duration(cfg.MaxRetries+1)*cfg.RequestTimeout
		if ft.maxDur > bound {
			t.Errorf("a call took %s, want ≤ %s", ft.maxDur, bound)
		}
	})
}

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
	calls := faultLoad(workers, 10_000, 3*time.Second, faultPause(5*time.Millisecond, 5*time.Millisecond), nil, func(int) error { return post(c, url) })
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
	after := faultLoad(8, 5, 5*time.Second, nil, nil, func(int) error { return post(c, url) })
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

// 10. Connections retire after 200 ms while 8 workers POST without pause:
// nothing fails, and the server sees connections replaced.
func faultLongRunning(t *testing.T) {
	const total, workers = 10_000, 8
	srv := startServer(t, refserver.Options{ResponseBytes: 64})
	cfg := faultConfig()
	cfg.MaxConnectionAge = 200 * time.Millisecond
	var (
		mu      sync.Mutex
		retried = map[string]int{} // why warmpool retried, by kind
	)
	c := newClient(t, srv, cfg, WithHooks(Hooks{Retry: func(ri RetryInfo) {
		mu.Lock()
		retried[fmt.Sprintf("%s (%v)", faultKind(ri.Err), ri.Err)]++
		mu.Unlock()
	}}))
	url := srv.URL() + "/answer"
	start := time.Now()
	calls := faultLoad(workers, total/workers, 60*time.Second, nil, nil, func(int) error {
		return c.PostJSON(context.Background(), url, question, nil)
	})
	took := time.Since(start)
	ft, st, cs := faultCount(calls), srv.Stats(), c.Stats()
	faultSummary(t, fmt.Sprintf("long-running connections (%s)", took.Round(time.Millisecond)), ft, st, cs)
	mu.Lock()
	if len(retried) > 0 {
		t.Logf("long-running connections: retries by cause: %v", retried)
	}
	mu.Unlock()
	if ft.sent != total {
		t.Errorf("made %d calls in %s, want %d", ft.sent, took, total)
	}
	if ft.failed != 0 {
		t.Errorf("%d of %d POSTs failed, want 0: %v", ft.failed, ft.sent, ft.only())
	}
	if st.Executions != int64(ft.ok) {
		t.Errorf("server executed %d POSTs for %d successes", st.Executions, ft.ok)
	}
	if st.Accepted <= workers || cs.ClosedBy.MaxAge == 0 {
		t.Errorf("server accepted %d connections, client retired %d for age; want > %d and > 0", st.Accepted, cs.ClosedBy.MaxAge, workers)
	}
}

// faultFDs counts this process's open file descriptors.
func faultFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count file descriptors: %v", err)
	}
	return len(ents)
}

// 11. 1,000 callers at once against 20 connections to a server that takes
// 5 ms per request: the pool holds, every caller gets an answer or
// ErrPoolTimeout, and Close gives back every goroutine and descriptor.
func faultOverload(t *testing.T) {
	const callers, limit = 1000, 20
	srv := startServer(t, refserver.Options{Delay: 5 * time.Millisecond})
	fds, goroutines := faultFDs(t), runtime.NumGoroutine()
	cfg := faultConfig()
	cfg.MaxConnections = limit
	cfg.MaxKeepaliveConnections = limit
	cfg.PoolTimeout = time.Second
	// WaitEnd says how each wait for a connection ended: with one (nil),
	// or with ErrPoolTimeout or the caller's error.
	var gaveUp atomic.Int64
	hooks := Hooks{WaitEnd: func(_ string, _ time.Duration, err error) {
		if err != nil {
			gaveUp.Add(1)
		}
	}}
	c, err := New(cfg, WithHooks(hooks))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stop := make(chan struct{})
	peak := faultPeakOpen(c, stop)
	start := time.Now()
	calls := faultLoad(callers, 1, 30*time.Second, nil, nil, func(int) error { return post(c, srv.URL()+"/answer") })
	took := time.Since(start)
	close(stop)
	ft, st, cs := faultCount(calls), srv.Stats(), c.Stats()
	faultSummary(t, fmt.Sprintf("overload (%s)", took.Round(time.Millisecond)), ft, st, cs)
	if ft.sent != callers {
		t.Errorf("%d callers got an answer, want %d", ft.sent, callers)
	}
	if err := ft.only("pool_timeout"); err != nil {
		t.Error(err)
	}
	if p := <-peak; st.PeakOpen > limit || p > limit {
		t.Errorf("server saw %d connections open at once, client %d; max_connections is %d", st.PeakOpen, p, limit)
	}
	// ErrPoolTimeout means the request waited for a connection and never
	// got one: it was not sent, so the server ran only the successes.
	if n := int64(ft.kinds["pool_timeout"]); n != gaveUp.Load() {
		t.Errorf("%d callers got ErrPoolTimeout, %d waits for a connection ended without one: %d had a connection",
			n, gaveUp.Load(), n-gaveUp.Load())
	}
	if st.Requests != int64(ft.ok) || st.Executions != int64(ft.ok) {
		t.Errorf("server received %d and executed %d requests for %d successes: %d callers told ErrPoolTimeout had their request sent",
			st.Requests, st.Executions, ft.ok, st.Requests-int64(ft.ok))
	}
	if bound := cfg.PoolTimeout + cfg.RequestTimeout; ft.maxDur > bound {
		t.Errorf("a caller waited %s, want ≤ pool_timeout + request_timeout (%s)", ft.maxDur, bound)
	}
	c.Close()
	var nowFDs, nowG int
	waitFor(t, "descriptors and goroutines to be released", 5*time.Second, func() bool {
		nowFDs, nowG = faultFDs(t), runtime.NumGoroutine()
		return nowFDs <= fds+2 && nowG <= goroutines+2 && srv.Stats().Open == 0
	})
	t.Logf("overload: fds %d before, %d after Close; goroutines %d before, %d after", fds, nowFDs, goroutines, nowG)
}
