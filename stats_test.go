package warmpool

import (
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/refserver"
)

// statsSampler reads Stats in a loop while a test's load runs and checks what
// must hold in every snapshot: gauges never negative, in use never above
// open, open never above max_connections, counters never going back, and the
// per-host figures summing to the totals.
type statsSampler struct {
	stop, done chan struct{}
	samples    int
	errs       []string
}

// sampleStats returns once the sampler took its first sample, so that a
// starved goroutine on a loaded machine cannot miss the load.
func sampleStats(c *Client) *statsSampler {
	s := &statsSampler{stop: make(chan struct{}), done: make(chan struct{})}
	maxConns := int64(c.Config().MaxConnections)
	started := make(chan struct{})
	go func() {
		defer close(s.done)
		var prev Stats
		for {
			st := c.Stats()
			s.samples++
			s.check(st, prev, maxConns)
			prev = st
			if s.samples == 1 {
				close(started)
			}
			select {
			case <-s.stop:
				return
			case <-time.After(200 * time.Microsecond):
			}
		}
	}()
	<-started
	return s
}

func (s *statsSampler) errorf(format string, args ...any) {
	if len(s.errs) < 10 {
		s.errs = append(s.errs, fmt.Sprintf("sample %d: ", s.samples)+fmt.Sprintf(format, args...))
	}
}

func (s *statsSampler) check(st, prev Stats, maxConns int64) {
	var sum HostStats
	for host, h := range st.Hosts {
		sum.add(h)
		for name, v := range map[string]int64{"Open": h.Open, "InUse": h.InUse, "Idle": h.Idle,
			"Dialing": h.Dialing, "InFlight": h.InFlight, "Waiting": h.Waiting} {
			if v < 0 {
				s.errorf("%s: %s = %d, want ≥ 0", host, name, v)
			}
		}
		if h.InUse > h.Open {
			s.errorf("%s: InUse %d > Open %d", host, h.InUse, h.Open)
		}
		if h.Open > maxConns {
			s.errorf("%s: Open %d > max_connections %d", host, h.Open, maxConns)
		}
		if h.Reused > h.Requests {
			s.errorf("%s: Reused %d > Requests %d", host, h.Reused, h.Requests)
		}
	}
	// The total's percentiles come from the hosts' latencies merged, not
	// from a sum of theirs.
	sum.LatencyP50, sum.LatencyP95, sum.LatencyP99 = st.LatencyP50, st.LatencyP95, st.LatencyP99
	if !reflect.DeepEqual(sum, st.HostStats) {
		s.errorf("per-host sum %+v != total %+v", sum, st.HostStats)
	}
	for _, c := range []struct {
		name      string
		now, prev int64
	}{
		{"Created", st.Created, prev.Created},
		{"Closed", st.Closed, prev.Closed},
		{"ClosedBy.Server", st.ClosedBy.Server, prev.ClosedBy.Server},
		{"ClosedBy.Other", st.ClosedBy.Other, prev.ClosedBy.Other},
		{"Requests", st.Requests, prev.Requests},
		{"Reused", st.Reused, prev.Reused},
		{"Waits", st.Waits, prev.Waits},
		{"WaitTime", int64(st.WaitTime), int64(prev.WaitTime)},
		{"PoolTimeouts", st.PoolTimeouts, prev.PoolTimeouts},
		{"TLSHandshakes", st.TLSHandshakes, prev.TLSHandshakes},
		{"DialFailures", st.DialFailures.Total(), prev.DialFailures.Total()},
		{"Retries", st.Retries, prev.Retries},
	} {
		if c.now < c.prev {
			s.errorf("counter %s went back from %d to %d", c.name, c.prev, c.now)
		}
	}
}

// finish stops sampling and reports what failed.
func (s *statsSampler) finish(t testing.TB) {
	t.Helper()
	close(s.stop)
	<-s.done
	for _, e := range s.errs {
		t.Error(e)
	}
	if s.samples < 2 {
		t.Errorf("took %d Stats samples during the load, want several", s.samples)
	}
}

// loadPosts runs workers callers of n POSTs each to url and fails the test on
// any error.
func loadPosts(t testing.TB, c *Client, url string, workers, n int) {
	t.Helper()
	if err := runPosts(c, url, workers, n); err != nil {
		t.Fatal(err)
	}
}

// runPosts runs workers callers of n POSTs each to url.
func runPosts(c *Client, url string, workers, n int) error {
	errs := runLoad(workers*n, workers, func(int) error { return post(c, url) })
	if _, _, other, err := countErrs(errs, nil); other > 0 {
		return fmt.Errorf("%d of %d calls failed, first: %w", other, len(errs), err)
	}
	return nil
}

// checkAtRest checks the gauges of a client with no request in flight
// against the server's view.
func checkAtRest(t testing.TB, c *Client, srv *refserver.Server) {
	t.Helper()
	waitFor(t, "client and server to agree on open connections", 2*time.Second, func() bool {
		return c.Stats().Open == srv.Stats().Open
	})
	st := c.Stats()
	if st.InUse != 0 || st.InFlight != 0 || st.Waiting != 0 || st.Dialing != 0 || st.Idle != st.Open {
		t.Errorf("at rest: in use %d, in flight %d, waiting %d, dialing %d, idle %d of %d open; want 0, 0, 0, 0, all",
			st.InUse, st.InFlight, st.Waiting, st.Dialing, st.Idle, st.Open)
	}
	if st.Open != st.Created-st.Closed {
		t.Errorf("at rest: open %d, want created %d − closed %d", st.Open, st.Created, st.Closed)
	}
}

func TestStatsAgreeWithServerUnderLoad(t *testing.T) {
	const workers, perWorker = 16, 25
	for _, p := range protos {
		t.Run(p.name, func(t *testing.T) {
			srv := startServer(t, refserver.Options{Proto: p.server})
			cfg := DefaultConfig()
			cfg.DisableHTTP2 = !p.http2
			c := newClient(t, srv, cfg)

			s := sampleStats(c)
			loadPosts(t, c, srv.URL()+"/answer", workers, perWorker)
			s.finish(t)
			checkAtRest(t, c, srv)

			st, ss := c.Stats(), srv.Stats()
			if st.Created != ss.Accepted {
				t.Errorf("Created = %d, server accepted %d", st.Created, ss.Accepted)
			}
			if st.Requests != ss.Requests || st.Requests != workers*perWorker {
				t.Errorf("Requests = %d, server counted %d, want %d", st.Requests, ss.Requests, workers*perWorker)
			}
			// Each request that is not a reuse is the first on a new
			// connection. Not every new connection gets one: net/http
			// dials for a request that finds no idle connection, and if
			// another frees up first the request takes that one and the
			// new connection goes idle, counted as reused at its first
			// request (and HTTP/2 closes such duplicates). So fresh
			// requests are at most, not exactly, Created.
			if fresh := st.Requests - st.Reused; fresh < 1 || fresh > st.Created {
				t.Errorf("Requests − Reused = %d − %d, want in [1, Created = %d]", st.Requests, st.Reused, st.Created)
			}
			wantTLS := int64(0)
			if p.server != "http" {
				wantTLS = st.Created
			}
			if st.TLSHandshakes != wantTLS || (wantTLS > 0) != (st.TLSHandshakeTime > 0) {
				t.Errorf("TLSHandshakes = %d in %s, want %d", st.TLSHandshakes, st.TLSHandshakeTime, wantTLS)
			}
			if st.DialFailures.Total() != 0 || st.Waits != 0 || st.PoolTimeouts != 0 {
				t.Errorf("dial failures %d, waits %d, pool timeouts %d; want none", st.DialFailures.Total(), st.Waits, st.PoolTimeouts)
			}
			if !p.http2 && st.Closed != st.ClosedBy.Other {
				// HTTP/2 closes the duplicates of a dial race; HTTP/1.1
				// keeps every connection under a steady load, but for those
				// net/http itself drops ("other"): on a loaded machine it
				// gives up a connection whose write loop has not reported
				// within 50ms (persistConn.wroteRequest).
				t.Errorf("HTTP/1.1 closed %d connections (%+v), want none but net/http's own", st.Closed, st.ClosedBy)
			}
		})
	}
}

func TestStatsPerHost(t *testing.T) {
	a := startServer(t, refserver.Options{Proto: "http"})
	b := startServer(t, refserver.Options{Proto: "tls-h1"})
	cfg := DefaultConfig()
	cfg.DisableHTTP2 = true
	c := newClient(t, b, cfg) // trusts b's certificate; a is cleartext

	s := sampleStats(c)
	var wg sync.WaitGroup
	var errA, errB error
	wg.Go(func() { errA = runPosts(c, a.URL()+"/answer", 8, 10) })
	wg.Go(func() { errB = runPosts(c, b.URL()+"/answer", 4, 10) })
	wg.Wait()
	s.finish(t)
	if errA != nil || errB != nil {
		t.Fatalf("load: %v; %v", errA, errB)
	}

	for _, srv := range []*refserver.Server{a, b} {
		waitFor(t, "client and "+srv.Addr()+" to agree on connections", 2*time.Second, func() bool {
			h, ss := c.Stats().Hosts[srv.Addr()], srv.Stats()
			return h.Open == ss.Open && h.Created == ss.Accepted
		})
	}
	st := c.Stats()
	if got, want := st.HostNames(), slices.Sorted(slices.Values([]string{a.Addr(), b.Addr()})); !slices.Equal(got, want) {
		t.Fatalf("HostNames() = %v, want %v", got, want)
	}
	for _, tc := range []struct {
		srv      *refserver.Server
		requests int64
	}{{a, 80}, {b, 40}} {
		h, ss := st.Hosts[tc.srv.Addr()], tc.srv.Stats()
		if h.Requests != tc.requests || h.Created != ss.Accepted || h.Open != ss.Open {
			t.Errorf("%s: requests %d, created %d, open %d; want %d and the server's %d, %d",
				tc.srv.Addr(), h.Requests, h.Created, h.Open, tc.requests, ss.Accepted, ss.Open)
		}
	}
	if st.Hosts[a.Addr()].TLSHandshakes != 0 || st.Hosts[b.Addr()].TLSHandshakes != st.Hosts[b.Addr()].Created {
		t.Errorf("TLS handshakes per host: %d, %d; want 0 and one per connection", st.Hosts[a.Addr()].TLSHandshakes, st.Hosts[b.Addr()].TLSHandshakes)
	}
}

func TestStatsDialRefused(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		maxRetries             int
		wantDials, wantRetries int64
	}{
		{"no retries", -1, 3, 0},
		{"3 retries", 3, 12, 9}, // a refused dial is retried for any method
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.MaxRetries = tc.maxRetries
			cfg.RetryBackoffFactor = 0.001
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			url := "http://" + closedAddr(t) + "/answer"
			for range 3 {
				if err := post(c, url); err == nil {
					t.Fatal("POST to a closed port succeeded")
				}
			}
			st := c.Stats()
			if st.DialFailures.Refused != tc.wantDials || st.DialFailures.Total() != tc.wantDials || st.Retries != tc.wantRetries {
				t.Errorf("dial failures %+v, retries %d; want %d refused and nothing else, %d retries", st.DialFailures, st.Retries, tc.wantDials, tc.wantRetries)
			}
			if st.Created != 0 || st.Open != 0 || st.Requests != 0 || st.InFlight != 0 {
				t.Errorf("created %d, open %d, requests %d, in flight %d; want 0", st.Created, st.Open, st.Requests, st.InFlight)
			}
		})
	}
}

// openConns opens n connections to srv at once (the server delay keeps the
// callers in flight together) and returns how many the client created.
func openConns(t testing.TB, c *Client, srv *refserver.Server, n int) int64 {
	t.Helper()
	loadPosts(t, c, srv.URL()+"/answer?delay=30ms", n, 1)
	st := c.Stats()
	if st.Created < 2 {
		t.Fatalf("%d callers opened %d connections, want several", n, st.Created)
	}
	return st.Created
}

func TestStatsCountsServerIdleTimeout(t *testing.T) {
	srv := startServer(t, refserver.Options{IdleTimeout: 50 * time.Millisecond})
	c := newClient(t, srv, DefaultConfig())
	n := openConns(t, c, srv, 4)
	waitFor(t, "the server's idle timeout to close every connection", 3*time.Second, func() bool { return c.Stats().Open == 0 })
	st, ss := c.Stats(), srv.Stats()
	if st.ClosedBy.Server != n || st.Closed != n {
		t.Errorf("closed %d, by server %d (%+v); want %d by server", st.Closed, st.ClosedBy.Server, st.ClosedBy, n)
	}
	if ss.Closed != n {
		t.Errorf("server closed %d, want %d", ss.Closed, n)
	}
}

func TestStatsCountsClientClose(t *testing.T) {
	for _, p := range protos[:2] {
		t.Run(p.name, func(t *testing.T) {
			srv := startServer(t, refserver.Options{Proto: p.server})
			cfg := DefaultConfig()
			cfg.DisableHTTP2 = true
			c := newClient(t, srv, cfg)
			n := openConns(t, c, srv, 4)
			c.Close()
			st := c.Stats()
			// A connection dialed for a request that another served first
			// (a loaded machine makes that likelier) is unused, whoever
			// closes it.
			if st.ClosedBy.Client+st.ClosedBy.Unused != n || st.Closed != n || st.Open != 0 {
				t.Errorf("after Close: closed %d (by client %d, unused %d), open %d; want %d by client or unused, 0 open",
					st.Closed, st.ClosedBy.Client, st.ClosedBy.Unused, st.Open, n)
			}
			waitFor(t, "the server to see every connection closed", 2*time.Second, func() bool { return srv.Stats().Open == 0 })
		})
	}
}

// doUnread sends a POST and closes the response without reading its body.
func doUnread(c *Client, url string) error {
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

func TestStatsCountsUnreadBodies(t *testing.T) {
	srv := startServer(t, refserver.Options{})
	c := newClient(t, srv, DefaultConfig())
	for range 5 {
		if err := doUnread(c, srv.URL()+"/answer"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the unread connections to close", 2*time.Second, func() bool { return c.Stats().Closed == 5 })
	st := c.Stats()
	if st.Created != 5 || st.Reused != 0 || st.ClosedBy.Other != 5 {
		t.Errorf("created %d, reused %d, closed by other %d (%+v); want 5, 0, 5", st.Created, st.Reused, st.ClosedBy.Other, st.ClosedBy)
	}
	// A body read to the end keeps the connection.
	if err := post(c, srv.URL()+"/answer"); err != nil {
		t.Fatal(err)
	}
	checkAtRest(t, c, srv)
	if st := c.Stats(); st.Open != 1 {
		t.Errorf("after a body read to the end: %d open, want 1", st.Open)
	}
}
