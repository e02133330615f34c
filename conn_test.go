package warmpool

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/refserver"
)

func TestKeepaliveExpiryClosesIdleConnection(t *testing.T) {
	srv := startServer(t, refserver.Options{})
	cfg := DefaultConfig()
	cfg.KeepaliveExpiry = 200 * time.Millisecond
	c := newClient(t, srv, cfg)
	if err := post(c, srv.URL()+"/answer"); err != nil {
		t.Fatal(err)
	}
	idleFrom := time.Now()
	if open := srv.Stats().Open; open != 1 {
		t.Fatalf("server has %d open connections, want 1", open)
	}
	waitFor(t, "the server to see the idle connection closed", 3*time.Second, func() bool { return srv.Stats().Open == 0 })
	if d := time.Since(idleFrom); d < 150*time.Millisecond {
		t.Errorf("idle connection closed after %s, want ≥ keepalive_expiry (200ms)", d)
	}
	waitFor(t, "client stats to count the close", time.Second, func() bool { return c.Stats().Closed == 1 })
	if st := c.Stats(); st.ClosedBy.IdleExpiry != 1 || st.Open != 0 {
		t.Errorf("client stats open=%d closed by idle expiry=%d, want 0 and 1", st.Open, st.ClosedBy.IdleExpiry)
	}
}

// TestLifetimeMaxAgeRetiresIdleConnection: the janitor closes an idle
// connection once it is past max_connection_age, and says why.
func TestLifetimeMaxAgeRetiresIdleConnection(t *testing.T) {
	srv := startServer(t, refserver.Options{})
	cfg := DefaultConfig()
	cfg.MaxConnectionAge = 100 * time.Millisecond
	c := newClient(t, srv, cfg)
	if err := getURL(c, srv.URL()+"/healthz"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the idle connection to be retired", 3*time.Second, func() bool {
		st := c.Stats()
		return st.ClosedBy.MaxAge == 1 && st.Open == 0
	})
	waitFor(t, "the server to see the connection closed", 3*time.Second, func() bool { return srv.Stats().Open == 0 })
	if st := c.Stats(); st.Closed != 1 || st.Created != 1 {
		t.Errorf("client created %d and closed %d connections, want 1 and 1; closed by %+v", st.Created, st.Closed, st.ClosedBy)
	}
	if err := getURL(c, srv.URL()+"/healthz"); err != nil {
		t.Fatal(err)
	}
	if n := srv.Stats().Accepted; n != 2 {
		t.Errorf("server accepted %d connections, want 2 (a new one after retirement)", n)
	}
}

// TestLifetimeAgedConnectionServesThenCloses: a request that gets a
// connection already past its age is served on it, and the connection is
// closed after that request instead of going back to the pool. The client's
// clock runs two hours ahead so that every connection is aged when a
// request picks it, while the janitor, on real time, leaves it alone.
func TestLifetimeAgedConnectionServesThenCloses(t *testing.T) {
	const requests = 3
	for _, tt := range []struct {
		name string
		call func(c *Client, base string) error
	}{
		{"GET", func(c *Client, base string) error { return getURL(c, base+"/healthz") }},
		{"POST", func(c *Client, base string) error { return post(c, base+"/answer") }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, refserver.Options{})
			cfg := DefaultConfig()
			cfg.MaxConnectionAge = time.Hour
			// A clock that moves two hours on at every reading: every
			// connection is past its age when a request takes it.
			var hours atomic.Int64
			c := newClient(t, srv, cfg, withClock(func() time.Time { return time.Now().Add(time.Duration(hours.Add(2)) * time.Hour) }))
			for i := range requests {
				if err := tt.call(c, srv.URL()); err != nil {
					t.Fatalf("request %d on an aged connection: %v", i, err)
				}
			}
			if st := srv.Stats(); st.Accepted != requests {
				t.Errorf("server accepted %d connections for %d requests, want one each (an aged connection serves one request)", st.Accepted, requests)
			}
			waitFor(t, "every aged connection to close", 3*time.Second, func() bool { return c.Stats().Open == 0 })
			if st := c.Stats(); st.ClosedBy.MaxAge != requests || st.Reused != 0 {
				t.Errorf("client closed %d connections for max age and reused %d, want %d and 0; closed by %+v",
					st.ClosedBy.MaxAge, st.Reused, requests, st.ClosedBy)
			}
		})
	}
}

// TestLifetimeRetireRacesWithRequest plays the janitor's retirement of an
// idle connection in its two steps, claim (inUse 0 → retiredMark) then
// close, with a request picking the connection from net/http's idle pool in
// between. The claim is meant to make that safe: the request must either not
// use the connection or fail before writing, so net/http retries it
// elsewhere. A plain POST, which neither net/http nor warmpool may retry
// once written, shows whether it does.
func TestLifetimeRetireRacesWithRequest(t *testing.T) {
	srv := startServer(t, refserver.Options{})
	cfg := DefaultConfig()
	cfg.MaxConnectionAge = time.Hour // the janitor itself stays out of the way
	c := newClient(t, srv, cfg)
	url := srv.URL() + "/answer"
	if err := post(c, url); err != nil {
		t.Fatal(err)
	}

	// Step 1 of retireIdle: claim the idle connection.
	pools := c.pools.all()
	if len(pools) != 1 {
		t.Fatalf("%d pools, want 1", len(pools))
	}
	conns := pools[0].conns.list()
	var idle *conn
	for _, cn := range conns {
		idle = cn
	}
	n := len(conns)
	if n != 1 || !idle.inUse.CompareAndSwap(0, retiredMark) {
		t.Fatalf("want exactly one idle connection to claim, have %d", n)
	}

	// A request arrives before the janitor gets to close it.
	done := make(chan error, 1)
	go func() { done <- post(c, url+"?delay=300ms") }()
	waitFor(t, "the request to reach the server", 3*time.Second, func() bool { return srv.Stats().InFlight == 1 })

	// Step 2 of retireIdle: close it.
	idle.closeWith(closeMaxAge)

	select {
	case err := <-done:
		if err != nil {
			t.Errorf("POST racing with the retirement of its connection: %v; want it served (on another connection)", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("POST did not return within 5s")
	}
	if st := srv.Stats(); st.Executions != 2 {
		t.Errorf("server executed %d requests, want 2", st.Executions)
	}
}

// TestLifetimeCloseReasons: Stats says who closed a connection.
func TestLifetimeCloseReasons(t *testing.T) {
	t.Run("server idle timeout", func(t *testing.T) {
		srv := startServer(t, refserver.Options{IdleTimeout: 100 * time.Millisecond})
		c := newClient(t, srv, DefaultConfig())
		if err := getURL(c, srv.URL()+"/healthz"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the server-closed connection to be counted", 3*time.Second, func() bool { return c.Stats().ClosedBy.Server == 1 })
		if st := c.Stats(); st.Closed != 1 || st.Open != 0 {
			t.Errorf("closed %d, open %d; want 1, 0; closed by %+v", st.Closed, st.Open, st.ClosedBy)
		}
	})
	t.Run("client keepalive expiry", func(t *testing.T) {
		srv := startServer(t, refserver.Options{})
		cfg := DefaultConfig()
		cfg.KeepaliveExpiry = 150 * time.Millisecond
		c := newClient(t, srv, cfg)
		if err := getURL(c, srv.URL()+"/healthz"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the expired connection to be counted", 3*time.Second, func() bool { return c.Stats().Closed == 1 })
		if st := c.Stats(); st.ClosedBy.IdleExpiry != 1 {
			t.Errorf("closed by %+v, want IdleExpiry 1", st.ClosedBy)
		}
		waitFor(t, "the server to see it closed", 3*time.Second, func() bool { return srv.Stats().Open == 0 })
	})
	t.Run("client close", func(t *testing.T) {
		srv := startServer(t, refserver.Options{})
		c := newClient(t, srv, DefaultConfig())
		if err := getURL(c, srv.URL()+"/healthz"); err != nil {
			t.Fatal(err)
		}
		c.Close()
		if st := c.Stats(); st.ClosedBy.Client != 1 || st.Open != 0 {
			t.Errorf("after Close: open %d, closed by %+v; want 0 open, Client 1", st.Open, st.ClosedBy)
		}
		if err := getURL(c, srv.URL()+"/healthz"); err == nil {
			t.Error("request after Close succeeded")
		}
	})
}

// TestLifetimeHalfOpenSettings: the settings that find a dead peer on a
// quiet connection follow connection_timeout.
func TestLifetimeHalfOpenSettings(t *testing.T) {
	for _, ct := range []time.Duration{500 * time.Millisecond, 3 * time.Second, 10 * time.Second, time.Minute} {
		t.Run(ct.String(), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.ConnectionTimeout = ct
			cfg.KeepaliveExpiry = 45 * time.Second
			cfg.MaxConnections = 7
			cfg.MaxKeepaliveConnections = 7
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ka := c.dialer.net.KeepAliveConfig
			if !ka.Enable || ka.Count != 3 || ka.Idle < time.Second || ka.Interval < time.Second {
				t.Errorf("TCP keepalive %+v: want enabled, 3 probes, idle and interval ≥ 1s", ka)
			}
			// A dead peer is found within about connection_timeout; below 6s
			// the one-second floors of the probe settings stretch it to 6s.
			if found := ka.Idle + time.Duration(ka.Count)*ka.Interval; found > max(ct, 6*time.Second) {
				t.Errorf("TCP keepalive finds a dead peer after %s, want ≤ max(connection_timeout %s, 6s)", found, ct)
			}
			if c.dialer.net.Timeout != ct {
				t.Errorf("dial timeout %s, want connection_timeout %s", c.dialer.net.Timeout, ct)
			}
			h2 := c.tr.HTTP2
			if h2 == nil || h2.PingTimeout <= 0 || h2.SendPingTimeout <= 0 || h2.PingTimeout+h2.SendPingTimeout > ct {
				t.Errorf("HTTP/2 health check %+v, want pings that find a dead peer within connection_timeout %s", h2, ct)
			}
			// max_connections is the pools' (their dial gate's), not net/http's.
			if c.tr.IdleConnTimeout != cfg.KeepaliveExpiry || c.tr.MaxConnsPerHost != 0 || c.pools.env.maxConns != 7 {
				t.Errorf("transport idle timeout %s, net/http max conns %d, pool max conns %d; want %s, 0, 7",
					c.tr.IdleConnTimeout, c.tr.MaxConnsPerHost, c.pools.env.maxConns, cfg.KeepaliveExpiry)
			}
		})
	}
}

// TestLifetimeReplayedRequestHoldsItsConnection follows a request that
// net/http replays on a second connection after the first refused the
// write (it had been claimed for retirement): the second connection is the
// one serving it, so it must count as in use, and the request must not be
// taken for one that no longer waits for a connection. With max_retries 0
// warmpool does not paper over a spurious error.
func TestLifetimeReplayedRequestHoldsItsConnection(t *testing.T) {
	srv := startServer(t, refserver.Options{})
	cfg := DefaultConfig()
	cfg.MaxRetries = -1
	cfg.MaxConnectionAge = time.Hour // the janitor itself stays out of the way
	c := newClient(t, srv, cfg)
	url := srv.URL() + "/answer"
	if err := post(c, url); err != nil {
		t.Fatal(err)
	}
	var first *conn
	for _, cn := range c.pools.all()[0].conns.list() {
		first = cn
	}
	if !first.inUse.CompareAndSwap(0, retiredMark) {
		t.Fatal("could not claim the idle connection")
	}
	defer first.closeWith(closeMaxAge)

	done := make(chan error, 1)
	go func() { done <- post(c, url+"?delay=300ms") }()
	deadline := time.After(5 * time.Second)
	for srv.Stats().InFlight != 1 {
		select {
		case err := <-done:
			t.Fatalf("POST replayed by net/http returned before reaching the server: %v", err)
		case <-deadline:
			t.Fatal("POST did not reach the server within 5s")
		case <-time.After(2 * time.Millisecond):
		}
	}
	if st := c.Stats(); st.InUse != 1 {
		t.Errorf("while the replayed request is served: %d connections in use, want 1 (open %d)", st.InUse, st.Open)
	}
	// A janitor tick an hour later: every connection is past its age, and
	// only idle ones may be retired.
	c.pools.all()[0].conns.retireIdle(time.Now().Add(2 * time.Hour))
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("replayed POST: %v; want it served", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("POST did not return within 5s")
	}
}

// TestMaxAgeRetiresBusyPOSTConnections: a connection kept busy by back-to-back
// POSTs must still be retired after max_connection_age.
func TestMaxAgeRetiresBusyPOSTConnections(t *testing.T) {
	srv := startServer(t, refserver.Options{Delay: 5 * time.Millisecond})
	cfg := DefaultConfig()
	cfg.MaxConnectionAge = 20 * time.Millisecond
	c := newClient(t, srv, cfg)
	for start := time.Now(); time.Since(start) < 200*time.Millisecond; {
		if err := post(c, srv.URL()+"/answer"); err != nil {
			t.Fatal(err)
		}
	}
	if st := c.Stats(); st.ClosedBy.MaxAge < 3 {
		t.Errorf("200ms of POSTs with max_connection_age 20ms retired %d connections (created %d), want ≥ 3", st.ClosedBy.MaxAge, st.Created)
	}
	c.Close()
	// The last connection is closed by Close, unless it aged out first.
	if st := c.Stats(); st.ClosedBy.Client > 1 || st.ClosedBy.Client+st.ClosedBy.MaxAge != st.Created || st.Open != 0 {
		t.Errorf("after Close: created %d, open %d, closed by %+v; want every connection closed by max age but at most one by client",
			st.Created, st.Open, st.ClosedBy)
	}
}
