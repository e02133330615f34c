package warmpool

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/refserver"
)

// TestBalanceSpreadsLoad: 32 workers × 100 POSTs against a name with three
// addresses. net/http alone put every call on one replica; p2c and
// round_robin give each a fair share, first keeps today's behaviour.
func TestBalanceSpreadsLoad(t *testing.T) {
	for _, mode := range []string{balancerP2C, balancerRoundRobin, balancerFirst} {
		t.Run(mode, func(t *testing.T) {
			f := startFleet(t, 3, refserver.Options{})
			cfg := quietConfig()
			cfg.Balancer = mode
			c := f.client(cfg)
			url := f.url("/answer")
			errs := parallel(32, func(int) error {
				for range 100 {
					if err := post(c, url); err != nil {
						return err
					}
				}
				return nil
			})
			if ok, _, other, first := countErrs(errs, nil); other > 0 {
				t.Fatalf("%d of 32 workers failed (%d ok), first: %v", other, ok, first)
			}
			got := f.requests()
			sh := shares(got)
			t.Logf("%s: requests per backend %v, shares %.3f", mode, got, sh)
			if mode == balancerFirst {
				if got[0] != 3200 {
					t.Errorf("first: got %v, want all 3200 on the first address", got)
				}
				// Package doctor's endpoint-pinned rule reads this from Stats
				// alone (doctor.TestEndpointRules): one endpoint of the name
				// took every attempt, its siblings listed beside it.
				st := c.Stats()
				if h := st.Hosts[f.addr(0)]; h.HostName == "" || h.Requests != st.Requests || len(st.Hosts) != 3 {
					t.Errorf("first: Stats %v: want %s, of a host name, with all %d attempts, beside two others", st.Hosts, f.addr(0), st.Requests)
				}
				return
			}
			for i, s := range sh {
				if s < 0.25 || s > 0.42 {
					t.Errorf("backend %d took %.1f %% of calls, want 25–42 %%", i, 100*s)
				}
			}
			// One Stats entry per endpoint, naming the host name.
			st := c.Stats()
			for i := range 3 {
				h, ok := st.Hosts[f.addr(i)]
				if !ok {
					t.Fatalf("Stats.Hosts has no entry %s: %v", f.addr(i), st.HostNames())
				}
				if h.HostName != fleetName || h.EndpointState != endpointActive {
					t.Errorf("%s: HostName %q, state %q, want %q, active", f.addr(i), h.HostName, h.EndpointState, fleetName)
				}
				if h.Requests != got[i] {
					t.Errorf("%s: client counted %d requests, server %d", f.addr(i), h.Requests, got[i])
				}
			}
		})
	}
}

// TestBalanceScaleUp: a fourth address appears in the resolver under load;
// with resolve_interval 500ms it takes its share within 2 s.
func TestBalanceScaleUp(t *testing.T) {
	f := startFleet(t, 4, refserver.Options{})
	f.res.remove(f.ip(3))
	cfg := quietConfig()
	cfg.ResolveInterval = 500 * time.Millisecond
	c := f.client(cfg)
	url := f.url("/answer")

	stop := background(t, 32, func(int) error { return post(c, url) })
	f.warm(t)

	f.res.add(f.ip(3))
	added := time.Now()
	prev, prevAt := f.requests(), added
	var window []int64
	for {
		time.Sleep(100 * time.Millisecond)
		now := f.requests()
		if time.Since(prevAt) >= 500*time.Millisecond || window == nil {
			window = diff(prev, now)
		}
		if sh := shares(window); sh[3] >= 0.15 {
			t.Logf("the new backend took %.1f %% of the last window %s after it appeared", 100*sh[3], time.Since(added).Round(10*time.Millisecond))
			break
		}
		if time.Since(added) > 2*time.Second {
			t.Fatalf("2s after a fourth address appeared it took %.1f %% of the last window (%v), want ≥ 15 %%", 100*shares(window)[3], window)
		}
		if time.Since(prevAt) >= 500*time.Millisecond {
			prev, prevAt = now, time.Now()
		}
	}
	if errs := failures(stop(), nil); len(errs) > 0 {
		t.Errorf("%d POSTs failed, first: %v", len(errs), errs[0])
	}
}

// TestBalanceScaleDown: an address leaves the resolver, then its server
// shuts down gracefully, as an orchestrator drains a replica (out of DNS, a
// grace period, then SIGTERM): no plain POST fails, the endpoint takes no
// new requests, and its connections close.
func TestBalanceScaleDown(t *testing.T) {
	f := startFleet(t, 3, refserver.Options{})
	cfg := quietConfig()
	cfg.ResolveInterval = 200 * time.Millisecond
	c := f.client(cfg)
	url := f.url("/answer")

	stop := background(t, 32, func(int) error { return post(c, url) })
	f.warm(t)

	f.res.remove(f.ip(2))
	gone := f.addr(2)
	waitFor(t, "the endpoint to drain", 3*time.Second, func() bool {
		s := c.Stats().Hosts[gone].EndpointState
		return s == endpointDraining || s == endpointRemoved
	})
	// An attempt that picked the endpoint just before the change may still
	// be on its way: give those the grace a preStop hook gives them.
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	before := f.requests()[2]
	f.stop(2, func(s *refserver.Server) {
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	time.Sleep(300 * time.Millisecond)
	if errs := failures(stop(), nil); len(errs) > 0 {
		t.Errorf("%d plain POSTs failed, want 0; first: %v", len(errs), errs[0])
	}
	if after := f.requests()[2]; after > before+32 {
		t.Errorf("the removed backend served %d requests after it drained, want at most those in flight", after-before)
	}
	waitFor(t, "the removed endpoint's connections to close", 3*time.Second, func() bool {
		h := c.Stats().Hosts[gone]
		return h.Open == 0 && h.EndpointState == endpointRemoved
	})
	st := c.Stats()
	if h := st.Hosts[gone]; h.Failures > 0 {
		t.Errorf("the removed endpoint saw %d failed attempts: %v", h.Failures, h.FailuresByKind)
	}
}

// TestBalanceCrash: one server closes abruptly under load. GETs and POSTs
// with an Idempotency-Key are retried on another endpoint and never fail;
// plain POSTs fail only if they were in flight on it (a reset, never a
// refused dial); while the endpoint is ejected nothing dials it; when it
// is back and the ejection ends, traffic returns.
func TestBalanceCrash(t *testing.T) {
	f := startFleet(t, 3, refserver.Options{Delay: time.Millisecond})
	cfg := quietConfig()
	cfg.EjectDuration = time.Second
	c := f.client(cfg)
	url := f.url("/answer")
	keyed := func() error {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"question":"keyed"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", time.Now().String())
		return doAndDrain(c, req)
	}
	get := func() error {
		req, _ := http.NewRequest(http.MethodGet, f.url("/healthz"), nil)
		return doAndDrain(c, req)
	}

	// 30 workers: 0–9 GET, 10–19 keyed POSTs, 20–29 plain POSTs.
	kinds := []string{"get", "keyed", "plain"}
	kind := func(i int) string { return kinds[i%30/10] }
	stop := background(t, 30, func(i int) error {
		switch kind(i) {
		case "get":
			return get()
		case "keyed":
			return keyed()
		}
		return post(c, url)
	})
	f.warm(t)

	dead := f.addr(1)
	inflight := f.srv(1).Stats().InFlight
	lookups := f.res.lookups.Load()
	f.stop(1, func(s *refserver.Server) { s.Close() })
	waitFor(t, "the crashed endpoint to be ejected", 3*time.Second, func() bool {
		return c.Stats().Hosts[dead].EndpointState == endpointEjected
	})
	// Attempts that picked it before it was ejected end first.
	waitFor(t, "the attempts on the crashed endpoint to end", time.Second, func() bool {
		h := c.Stats().Hosts[dead]
		return h.InFlight == 0 && h.Dialing == 0
	})
	time.Sleep(20 * time.Millisecond)
	ejectedAt := c.Stats().Hosts[dead]
	if ejectedAt.EndpointState != endpointEjected {
		t.Fatalf("the crashed endpoint is %s already, want ejected for 1s", ejectedAt.EndpointState)
	}
	f.start(1) // back, but still ejected
	for c.Stats().Hosts[dead].EndpointState == endpointEjected {
		h := c.Stats().Hosts[dead]
		if h.Created != ejectedAt.Created || h.DialFailures.Total() != ejectedAt.DialFailures.Total() {
			t.Fatalf("while ejected: connections created %d → %d, dial failures %d → %d, want no dial",
				ejectedAt.Created, h.Created, ejectedAt.DialFailures.Total(), h.DialFailures.Total())
		}
		time.Sleep(10 * time.Millisecond) // a poll: the ejection ends on the client's own clock, unannounced
	}
	back := f.srv(1).Stats().Requests
	waitFor(t, "traffic to return to the restarted backend", 3*time.Second, func() bool {
		return f.srv(1).Stats().Requests > back+100
	})
	errs := stop()
	for _, k := range kinds[:2] {
		if errs := failures(errs, func(i int) bool { return kind(i) == k }); len(errs) > 0 {
			t.Errorf("%d %s calls failed, want 0; first: %v", len(errs), k, errs[0])
		}
	}
	plain := failures(errs, func(i int) bool { return kind(i) == "plain" })
	ok, _, _, _ := countErrs(errs, errStop)
	if len(plain) > 10 {
		t.Errorf("%d plain POSTs failed, want at most one per plain worker (10), those in flight on the crashed server", len(plain))
	}
	for _, err := range plain {
		if k := ErrorKind(err); k == "refused" || k == "dns" {
			t.Errorf("a plain POST failed with %q (%v): it was not in flight on the crashed server", k, err)
		}
	}
	if f.res.lookups.Load() == lookups {
		t.Error("the name was not resolved again after the dial failures")
	}
	if n := c.Stats().Hosts[dead].Ejections; n < 1 {
		t.Errorf("Ejections = %d, want ≥ 1", n)
	}
	t.Logf("calls %d, plain POST failures %d (server had %d in flight), requests per backend %v",
		ok+len(failures(errs, nil)), len(plain), inflight, f.requests())
}

// TestBalanceSlowEndpoint: one endpoint answers 30 ms slower. p2c, which
// compares requests in flight, sends it few calls; round_robin a third.
func TestBalanceSlowEndpoint(t *testing.T) {
	tests := []struct {
		mode     string
		min, max float64
	}{
		{balancerP2C, 0, 0.15},
		{balancerRoundRobin, 0.30, 0.37},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			f := startFleet(t, 3, refserver.Options{})
			f.srv(2).SetDelay(30 * time.Millisecond)
			cfg := quietConfig()
			cfg.Balancer = tt.mode
			c := f.client(cfg)
			url := f.url("/answer")
			// 16 workers: with more, under -race on a small machine, the
			// fast backends queue for CPU long enough that 30 ms is no
			// longer much slower.
			errs := load(t, 16*120, 16, func(int) error { return post(c, url) })
			if _, _, other, first := countErrs(errs, nil); other > 0 {
				t.Fatalf("%d of %d calls failed, first: %v", other, len(errs), first)
			}
			got := f.requests()
			sh := shares(got)
			t.Logf("%s: requests per backend %v", tt.mode, got)
			if sh[2] < tt.min || sh[2] > tt.max {
				t.Errorf("%s: the slow backend took %.1f %% of calls, want %.0f–%.0f %%", tt.mode, 100*sh[2], 100*tt.min, 100*tt.max)
			}
		})
	}
}

// TestBalanceOneAddressIsPlain: under the system resolver an IP literal
// URL goes through the client's own transport, keyed as dialed, as before.
func TestBalanceOneAddressIsPlain(t *testing.T) {
	srv := startServer(t, refserver.Options{})
	c := newClient(t, srv, quietConfig())
	if err := post(c, srv.URL()+"/answer"); err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	if got := st.HostNames(); !slices.Equal(got, []string{srv.Addr()}) {
		t.Fatalf("Stats.Hosts = %v, want [%s]", got, srv.Addr())
	}
	if h := st.Hosts[srv.Addr()]; h.HostName != "" || h.EndpointState != "" {
		t.Errorf("HostName %q, EndpointState %q, want both empty", h.HostName, h.EndpointState)
	}
}

// TestBalanceResolveFailureKeepsSet: a failed resolution keeps the last
// good set.
func TestBalanceResolveFailureKeepsSet(t *testing.T) {
	f := startFleet(t, 2, refserver.Options{})
	cfg := quietConfig()
	cfg.ResolveInterval = 50 * time.Millisecond
	c := f.client(cfg)
	if err := post(c, f.url("/answer")); err != nil {
		t.Fatal(err)
	}
	f.res.remove(f.ip(0))
	f.res.remove(f.ip(1)) // every lookup now fails
	n := f.res.lookups.Load()
	waitFor(t, "two more lookups", 2*time.Second, func() bool { return f.res.lookups.Load() >= n+2 })
	for range 20 {
		if err := post(c, f.url("/answer")); err != nil {
			t.Fatalf("after failed lookups: %v", err)
		}
	}
	if got := f.requests(); got[0] == 0 || got[1] == 0 {
		t.Errorf("requests per backend %v, want both used", got)
	}
}

func doAndDrain(c *Client, req *http.Request) error {
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	drainAndClose(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return nil
}

// fakeResolver answers fleetName with the addresses the test sets.
type fakeResolver struct {
	mu      sync.Mutex
	addrs   []string
	lookups atomic.Int64
}

func (r *fakeResolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	r.lookups.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if host != fleetName || len(r.addrs) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return slices.Clone(r.addrs), nil
}

func (r *fakeResolver) add(ip string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addrs = append(r.addrs, ip)
}

func (r *fakeResolver) remove(ip string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addrs = slices.DeleteFunc(r.addrs, func(a string) bool { return a == ip })
}

// shares turns counts into shares of their sum.
func shares(n []int64) []float64 {
	var sum int64
	for _, v := range n {
		sum += v
	}
	out := make([]float64, len(n))
	for i, v := range n {
		if sum > 0 {
			out[i] = float64(v) / float64(sum)
		}
	}
	return out
}

// diff is b − a, element by element.
func diff(a, b []int64) []int64 {
	out := make([]int64, len(b))
	for i := range b {
		out[i] = b[i]
		if i < len(a) {
			out[i] -= a[i]
		}
	}
	return out
}
