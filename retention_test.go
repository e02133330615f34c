package warmpool

import (
	"strconv"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/refserver"
)

// steadyLoad runs workers that post back to back until the duration passes.
func steadyLoad(t testing.TB, c *Client, url string, workers int, d time.Duration) (ok, failed int) {
	t.Helper()
	ok, _, failed, _ = countErrs(load(t, maxLoad, workers, until(d, nil, func(int) error { return post(c, url) })), errStop)
	return ok, failed
}

// With the default config (max_keepalive_connections 20), a steady load of
// more workers than that must not close and reopen connections: retention
// follows demand.
func TestDefaultConfigSteadyLoadDoesNotChurn(t *testing.T) {
	for _, workers := range []int{32, 64} {
		t.Run("workers="+itoa(workers), func(t *testing.T) {
			srv := startServer(t, refserver.Options{Delay: time.Millisecond})
			cfg := DefaultConfig()
			cfg.DisableHTTP2 = true
			c := newClient(t, srv, cfg)
			url := srv.URL() + "/answer"
			// Warm-up: every worker's first request dials, and a dial that
			// loses the race to a freed connection stays in the pool.
			if _, failed := steadyLoad(t, c, url, workers, 300*time.Millisecond); failed > 0 {
				t.Fatalf("warm-up: %d requests failed", failed)
			}
			warm := srv.Stats().Accepted
			if warm > int64(workers)*3/2 {
				t.Errorf("warm-up opened %d connections for %d workers", warm, workers)
			}
			ok, failed := steadyLoad(t, c, url, workers, time.Second)
			if failed > 0 {
				t.Fatalf("%d requests failed", failed)
			}
			// Churn is a connection closed and another opened. A loaded
			// machine may start some workers late, so demand can still
			// grow after the warm-up: new connections then are not churn,
			// closed ones are.
			if st := srv.Stats(); st.Open+c.Stats().ClosedBy.Other != st.Accepted || st.Accepted > int64(workers)*3/2 {
				t.Errorf("server accepted %d connections (%d in steady state, %d requests by %d workers), %d still open; want all kept open, at most %d",
					st.Accepted, st.Accepted-warm, ok, workers, st.Open, workers*3/2)
			}
			// None closed but those net/http itself drops on a loaded
			// machine ("other": a write loop that has not reported within
			// 50ms, persistConn.wroteRequest): warmpool trims none, nor lets
			// any expire, under a steady load.
			if cs := c.Stats(); cs.Closed != cs.ClosedBy.Other {
				t.Errorf("client closed %d connections under steady load (%+v), want none but net/http's own", cs.Closed, cs.ClosedBy)
			}
		})
	}
}

// After a burst, idle connections beyond max_keepalive_connections and the
// current demand are closed once the burst is keepalive_expiry in the past.
func TestIdleRetentionTrimsAfterBurst(t *testing.T) {
	srv := startServer(t, refserver.Options{Delay: 30 * time.Millisecond})
	cfg := DefaultConfig()
	cfg.MaxKeepaliveConnections = 4
	cfg.KeepaliveExpiry = 400 * time.Millisecond
	c := newClient(t, srv, cfg)
	url := srv.URL() + "/answer"
	if ok, _, _, err := countErrs(load(t, 24, 24, func(int) error { return post(c, url) }), nil); ok != 24 {
		t.Fatalf("burst: %d of 24 succeeded, first error: %v", ok, err)
	}
	if open := c.Stats().Open; open < 12 {
		t.Fatalf("burst left %d connections open, want most of 24", open)
	}
	// A trickle of single requests keeps the pool in use but needs one.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && c.Stats().Open > int64(cfg.MaxKeepaliveConnections) {
		if err := post(c, url); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	st := c.Stats()
	if st.Open > int64(cfg.MaxKeepaliveConnections) {
		t.Fatalf("%d connections still open 3s after the burst, want ≤ %d", st.Open, cfg.MaxKeepaliveConnections)
	}
	if st.ClosedBy.Trim+st.ClosedBy.IdleExpiry == 0 {
		t.Errorf("no connection closed by trim or idle expiry: %+v", st.ClosedBy)
	}
	t.Logf("closed by trim %d, by idle expiry %d", st.ClosedBy.Trim, st.ClosedBy.IdleExpiry)
}

func itoa(n int) string { return strconv.Itoa(n) }

// After a burst, a pool whose keepalive_expiry is long gives back the idle
// connections beyond max_keepalive_connections within the demand window (a
// tenth of keepalive_expiry, at least 1s), not keepalive_expiry later.
func TestIdleRetentionTrimsSoonAfterBurst(t *testing.T) {
	srv := startServer(t, refserver.Options{Delay: 30 * time.Millisecond})
	cfg := DefaultConfig()
	cfg.MaxKeepaliveConnections = 4
	cfg.KeepaliveExpiry = 20 * time.Second // window 2s
	c := newClient(t, srv, cfg)
	url := srv.URL() + "/answer"
	if ok, _, _, err := countErrs(load(t, 24, 24, func(int) error { return post(c, url) }), nil); ok != 24 {
		t.Fatalf("burst: %d of 24 succeeded, first error: %v", ok, err)
	}
	if open := c.Stats().Open; open < 12 {
		t.Fatalf("burst left %d connections open, want most of 24", open)
	}
	deadline := time.Now().Add(5 * time.Second) // window 2s, a generous bound for a loaded machine
	for time.Now().Before(deadline) && c.Stats().Open > int64(cfg.MaxKeepaliveConnections) {
		time.Sleep(50 * time.Millisecond)
	}
	st := c.Stats()
	if st.Open != int64(cfg.MaxKeepaliveConnections) || st.ClosedBy.Trim != st.Created-st.Open {
		t.Errorf("5s after the burst: %d open, closed by %+v; want %d open, the rest trimmed", st.Open, st.ClosedBy, cfg.MaxKeepaliveConnections)
	}
}
