package warmpool

import (
	"testing"
	"time"
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
	s := &endpointSet{rs: c.routes, name: fleetName}
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
	if w := s.weight(old, now.UnixNano()); w != 1 {
		t.Errorf("an endpoint from the first answer has weight %g, want 1", w)
	}
	if w := s.weight(fresh, now.UnixNano()); w < 0.19 || w > 0.21 {
		t.Errorf("2s into a 10s slow start: weight %g, want 0.2", w)
	}
	// p2c counts the fresh one's load as (in flight + 1) / weight = 5.
	old.pool.inflight.Store(3) // (3+1)/1 = 4
	if e := s.lighter(old, fresh, now.UnixNano()); e != old {
		t.Errorf("old at 4 vs fresh at 5: picked %s, want old", e.addr)
	}
	old.pool.inflight.Store(5) // 6
	if e := s.lighter(old, fresh, now.UnixNano()); e != fresh {
		t.Errorf("old at 6 vs fresh at 5: picked %s, want fresh", e.addr)
	}
}

// fail feeds e's pool one 503 answer at now.
func fail(e *endpoint, now time.Time) { e.pool.observe(outcome{status: 503}, now, false) }
