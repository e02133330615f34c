package warmpool

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/refserver"
)

// testSet builds a client on a fake clock and a set of n endpoints that no
// request reaches: for the ejection and picking rules alone.
func testSet(t *testing.T, cfg Config, n int) (*endpointSet, []*endpoint, *time.Time) {
	t.Helper()
	now := time.Unix(1_000_000, 0)
	c, err := New(cfg, withClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s := newEndpointSet(c.routes, fleetName, "80")
	eps := make([]*endpoint, n)
	for i := range eps {
		addr := string(rune('a' + i))
		eps[i] = &endpoint{set: s, addr: addr, pool: c.pools.get(addr, fleetName)}
		eps[i].pool.ep.Store(eps[i])
	}
	s.list.Store(&endpointList{eps: eps})
	return s, eps, &now
}

func TestEjection(t *testing.T) {
	cfg := DefaultConfig()
	cfg.EjectAfterFailures = 3
	cfg.EjectDuration = 10 * time.Second
	s, eps, now := testSet(t, cfg, 3)
	a, b := eps[0], eps[1]

	fail(a, *now)
	fail(a, *now)
	if a.state(*now) != endpointActive {
		t.Fatalf("after 2 failures: %s, want active", a.state(*now))
	}
	fail(a, *now)
	if a.state(*now) != endpointEjected || a.pool.circuit.ejections.Load() != 1 {
		t.Fatalf("after 3 failures: %s, %d ejections; want ejected once", a.state(*now), a.pool.circuit.ejections.Load())
	}
	if got := time.Duration(a.pool.circuit.until.Load() - now.UnixNano()); got != 10*time.Second {
		t.Errorf("first ejection lasts %s, want eject_duration 10s", got)
	}
	// max_ejected_percent 50 of 3 endpoints: one at a time.
	for range 5 {
		fail(b, *now)
	}
	if b.state(*now) != endpointActive {
		t.Errorf("a second endpoint of 3 was ejected: %s, want active (max_ejected_percent 50)", b.state(*now))
	}
	// While a is out, no pick returns it, whatever prev.
	for range 100 {
		if e := s.pick(eps, b); e == a || e == b {
			t.Fatalf("picked %s with a ejected and b the previous endpoint, want c", e.addr)
		}
	}
	// Ejected again soon after coming back: twice as long.
	*now = now.Add(11 * time.Second)
	if a.state(*now) != endpointActive {
		t.Fatalf("after eject_duration: %s, want active", a.state(*now))
	}
	b.pool.health.fails.Store(0)
	for range 3 {
		fail(a, *now)
	}
	if got := time.Duration(a.pool.circuit.until.Load() - now.UnixNano()); got != 20*time.Second {
		t.Errorf("second ejection lasts %s, want 20s", got)
	}
	// A success resets the count of failures in a row.
	*now = now.Add(time.Hour)
	fail(a, *now)
	fail(a, *now)
	a.pool.observe(outcome{took: time.Millisecond, status: 200}, *now, false) // a success
	fail(a, *now)
	if a.state(*now) != endpointActive {
		t.Errorf("failures interrupted by a success ejected it")
	}
	// Long after: back to eject_duration.
	fail(a, *now)
	fail(a, *now)
	if got := time.Duration(a.pool.circuit.until.Load() - now.UnixNano()); got != 10*time.Second {
		t.Errorf("ejection an hour later lasts %s, want 10s again", got)
	}
}

func TestPanicModeUsesAll(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxEjectedPercent = 100
	cfg.EjectAfterFailures = 1
	s, eps, now := testSet(t, cfg, 2)
	fail(eps[0], *now)
	fail(eps[1], *now)
	if eps[0].state(*now) != endpointEjected || eps[1].state(*now) != endpointEjected {
		t.Fatalf("states %s, %s; want both ejected", eps[0].state(*now), eps[1].state(*now))
	}
	seen := map[*endpoint]bool{}
	for range 100 {
		seen[s.pick(eps, nil)] = true
	}
	if len(seen) != 2 {
		t.Errorf("with every endpoint ejected, picks used %d of 2, want all", len(seen))
	}
}

func TestSlowStartWeight(t *testing.T) {
	cfg := DefaultConfig()
	cfg.SlowStart = 10 * time.Second
	s, eps, now := testSet(t, cfg, 2)
	old, fresh := eps[0], eps[1]
	fresh.added = now.UnixNano()
	*now = now.Add(2 * time.Second)
	if w := s.pk.weight(old, now.UnixNano()); w != 1 {
		t.Errorf("an endpoint from the first answer has weight %g, want 1", w)
	}
	if w := s.pk.weight(fresh, now.UnixNano()); w < 0.19 || w > 0.21 {
		t.Errorf("2s into a 10s slow start: weight %g, want 0.2", w)
	}
	// p2c counts the fresh one's load as (in flight + 1) / weight = 5.
	old.pool.inflight.Store(3) // (3+1)/1 = 4
	if e := s.pk.lighter(old, fresh, now.UnixNano()); e != old {
		t.Errorf("old at 4 vs fresh at 5: picked %s, want old", e.addr)
	}
	old.pool.inflight.Store(5) // 6
	if e := s.pk.lighter(old, fresh, now.UnixNano()); e != fresh {
		t.Errorf("old at 6 vs fresh at 5: picked %s, want fresh", e.addr)
	}
}

// fail feeds e's pool one 503 answer at now.
func fail(e *endpoint, now time.Time) { e.pool.observe(outcome{status: 503}, now, false) }

func TestBreakerOpensOnRefused(t *testing.T) {
	addr := closedAddr(t)
	c, err := New(Config{CircuitBreakerFailures: 3, CircuitBreakerOpenFor: time.Hour, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	url := "http://" + addr + "/"
	for i := range 3 {
		if err := get(c, url); ErrorKind(err) != "refused" {
			t.Fatalf("call %d: %v, want refused", i, err)
		}
	}
	start := time.Now()
	for i := range 1000 {
		err := get(c, url)
		var ce *CircuitOpenError
		if !errors.Is(err, ErrCircuitOpen) || !errors.As(err, &ce) || ErrorKind(err) != "circuit_open" {
			t.Fatalf("call %d after 3 refusals: %v, want ErrCircuitOpen", i, err)
		}
		if ce.Host != addr || ce.Failures != 3 || ErrorKind(ce.Cause) != "refused" {
			t.Fatalf("error %+v: want host %s, 3 failures, the refusal as cause", ce, addr)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("1000 calls on an open circuit took %s, want them failed at once (generous bound 2s)", d)
	}
	st := c.Stats()
	if st.DialFailures.Refused != 3 || st.CircuitRejections != 1000 || st.CircuitOpens != 1 || st.Hosts[addr].CircuitState != "open" {
		t.Errorf("Stats: %d refused dials, %d rejections, %d opens, state %q; want 3 (no dial while open), 1000, 1, open",
			st.DialFailures.Refused, st.CircuitRejections, st.CircuitOpens, st.Hosts[addr].CircuitState)
	}
	if msg := get(c, url).Error(); !strings.Contains(msg, addr) || !strings.Contains(msg, "refused") || !strings.Contains(msg, "circuit_breaker_failures") {
		t.Errorf("message %q: want the host, the cause and the key to change", msg)
	}
}

// TestBreakerHangThenRecover: a backend that accepts and never answers
// opens the circuit after circuit_breaker_failures request timeouts; calls
// then fail at once without reaching it; once it answers again, one probe
// at a time tests it after circuit_breaker_open_for, and the first success
// closes the circuit.
func TestBreakerHangThenRecover(t *testing.T) {
	b := startBackend(t)
	b.holdAnswers()
	const openFor = 300 * time.Millisecond
	c, err := New(Config{CircuitBreakerFailures: 3, CircuitBreakerOpenFor: openFor, RequestTimeout: 200 * time.Millisecond, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	errs := parallel(3, func(int) error { return get(c, b.URL) })
	if _, timedOut, other, first := countErrs(errs, context.DeadlineExceeded); timedOut != 3 {
		t.Fatalf("%d of 3 calls to a hanging backend timed out (%d other, first %v), want 3", timedOut, other, first)
	}
	openedAt := time.Now()
	for i := range 1000 {
		if err := get(c, b.URL); !errors.Is(err, ErrCircuitOpen) {
			if time.Since(openedAt) < openFor {
				t.Fatalf("call %d: %v, want ErrCircuitOpen", i, err)
			}
			break // a slow machine reached the probe time: fine
		}
	}
	if got := b.arrived.Load(); got > 4 {
		t.Errorf("the hanging backend got %d requests, want the 3 that timed out (and at most one probe)", got)
	}
	// Still hanging after open_for: of 10 calls at once, one probes it.
	waitFor(t, "the circuit to allow a probe", 5*time.Second, func() bool {
		return c.Stats().Hosts[b.Listener.Addr().String()].CircuitState == circuitHalfOpen
	})
	arrived := b.arrived.Load()
	errs = parallel(10, func(int) error { return get(c, b.URL) })
	_, open, _, _ := countErrs(errs, ErrCircuitOpen)
	if got := b.arrived.Load() - arrived; got != 1 || open != 9 {
		t.Errorf("half-open: %d requests reached the backend, %d calls failed at once; want 1 probe and 9", got, open)
	}
	// It recovers: the next probe closes the circuit.
	b.release()
	recovered := time.Now()
	var first time.Duration
	waitFor(t, "a success after recovery", 5*time.Second, func() bool {
		if get(c, b.URL) == nil {
			first = time.Since(recovered)
			return true
		}
		return false
	})
	if first > openFor+time.Second {
		t.Errorf("first success %s after recovery, want within open_for (%s) and one probe (generous bound 1s)", first, openFor)
	}
	errs = parallel(20, func(int) error { return get(c, b.URL) })
	if ok, _, _, err := countErrs(errs, nil); ok != 20 {
		t.Errorf("after recovery %d of 20 calls succeeded, first error %v", ok, err)
	}
	if st := c.Stats(); st.CircuitOpens < 2 || st.Hosts[b.Listener.Addr().String()].CircuitState != circuitClosed {
		t.Errorf("Stats: %d opens, state %q; want at least 2 (the probe that met the hang reopened it), closed",
			st.CircuitOpens, st.Hosts[b.Listener.Addr().String()].CircuitState)
	}
}

// TestBreakerPerEndpoint: with one of three replicas down, the breaker
// opens for it alone, and idempotent calls keep succeeding on the others.
func TestBreakerPerEndpoint(t *testing.T) {
	f := startFleet(t, 3, refserver.Options{})
	cfg := quietConfig()
	cfg.CircuitBreakerFailures = 2
	cfg.CircuitBreakerOpenFor = time.Hour
	cfg.EjectAfterFailures = 1000 // the breaker alone
	c := f.client(cfg)
	f.stop(1, func(s *refserver.Server) { s.Close() })
	for i := range 300 {
		resp, err := c.HTTPClient().Get(f.url("/healthz"))
		if err != nil {
			t.Fatalf("GET %d with one replica down: %v", i, err)
		}
		drainAndClose(resp.Body)
	}
	st := c.Stats()
	down := st.Hosts[f.addr(1)]
	if down.CircuitState != circuitOpen || down.CircuitOpens != 1 || down.DialFailures.Refused != 2 {
		t.Errorf("the down replica: state %q, %d opens, %d refused dials; want open, 1, 2 (none after it opened)",
			down.CircuitState, down.CircuitOpens, down.DialFailures.Refused)
	}
	for _, i := range []int{0, 2} {
		if h := st.Hosts[f.addr(i)]; h.CircuitState != circuitClosed || h.Requests < 100 {
			t.Errorf("replica %d: state %q, %d requests; want closed and its share", i, h.CircuitState, h.Requests)
		}
	}
}

// TestBreakerOpensOnCallersDeadlines: callers whose deadlines (shorter than
// request_timeout) pass while a hanging backend holds their requests open
// the breaker as request timeouts would.
func TestBreakerOpensOnCallersDeadlines(t *testing.T) {
	b := startBackend(t)
	b.holdAnswers()
	c, err := New(Config{CircuitBreakerFailures: 3, CircuitBreakerOpenFor: time.Hour, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	call := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		return c.DoJSON(ctx, "GET", b.URL, nil, nil)
	}
	for i := range 3 {
		if err := call(); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("call %d to a hanging backend: %v, want the caller's deadline", i, err)
		}
	}
	if err := call(); !errors.Is(err, ErrCircuitOpen) {
		t.Errorf("after 3 callers' deadlines passed at the backend: %v, want ErrCircuitOpen", err)
	}
	if got := b.arrived.Load(); got != 3 {
		t.Errorf("backend got %d requests, want 3", got)
	}
}
