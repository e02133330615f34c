package warmpool

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/faultproxy"
	"github.com/warmpool/warmpool/internal/refserver"
)

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
		cfg.MaxRetries = -1 // one attempt per call: its own time is measured
		cfg.RequestTimeout = 300 * time.Millisecond
		c := newClient(t, srv, cfg)
		url := "http://" + p.Addr() + "/healthz"
		// Warm the pool first: the black hole swallows pooled and new
		// connections alike. A loaded machine may need more than one
		// round within the 300ms request_timeout.
		for round := 1; ; round++ {
			_, _, other, err := countErrs(load(t, 8, 8, func(int) error { return faultGet(context.Background(), c, url) }), nil)
			if other == 0 {
				break
			}
			if round == 5 {
				t.Fatalf("warm-up: %v", err)
			}
		}
		if err := p.AddToxic(faultproxy.Timeout("hole", faultproxy.Upstream)); err != nil {
			t.Fatal(err)
		}
		calls := faultCalls(t, 8, 8*3, 5*time.Second, nil, nil, func(int) error { return faultGet(context.Background(), c, url) })
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
		cfg.MaxRetries = -1
		cfg.ConnectionTimeout = 300 * time.Millisecond
		cfg.RequestTimeout = 5 * time.Second
		c := newClient(t, srv, cfg)
		url := "https://" + p.Addr() + "/healthz"
		calls := faultCalls(t, 8, 8*3, 5*time.Second, nil, nil, func(int) error { return faultGet(context.Background(), c, url) })
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
	cfg.MaxRetries = -1
	cfg.RequestTimeout = 300 * time.Millisecond
	c := newClient(t, srv, cfg)
	url := "http://" + p.Addr() + "/healthz"
	if err := faultGet(context.Background(), c, url); err != nil {
		t.Fatal(err)
	}
	if err := p.AddToxic(faultproxy.Latency("slow", faultproxy.Downstream, time.Second)); err != nil {
		t.Fatal(err)
	}
	calls := faultCalls(t, 4, 4*3, 5*time.Second, nil, nil, func(int) error { return faultGet(context.Background(), c, url) })
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
