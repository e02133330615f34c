package warmpool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/refserver"
)

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
		calls := faultCalls(t, 16, 16*8, 3*time.Second, nil, nil, func(int) error { return post(c, srv.URL()+"/answer") })
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
		calls := faultCalls(t, 8, 8*5, 3*time.Second, nil, nil, func(int) error { return post(c, srv.URL()+"/answer") })
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
	calls := faultCalls(t, workers, total, 60*time.Second, nil, nil, func(int) error {
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
	calls := faultCalls(t, callers, callers, 30*time.Second, nil, nil, func(int) error { return post(c, srv.URL()+"/answer") })
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
