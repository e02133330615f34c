package warmpool

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/refserver"
)

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
			calls := faultCalls(t, 8, 8*40, 2*time.Second, faultPause(40*time.Millisecond, 60*time.Millisecond), nil,
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
func faultRunOutage(t *testing.T, down time.Duration, fn func(i int) error, out, back func()) faultOutage {
	t.Helper()
	var o faultOutage
	stop := make(chan struct{})
	done := make(chan []faultCall, 1)
	go func() {
		done <- faultCalls(t, 8, 8*10_000, 10*time.Second, faultPause(10*time.Millisecond, 10*time.Millisecond), stop, fn)
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
	o := faultRunOutage(t, 2*time.Second, func(i int) error {
		if i%2 == 0 { // workers 0, 2, 4, 6 GET; 1, 3, 5, 7 POST
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
