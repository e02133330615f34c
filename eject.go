package warmpool

import "time"

// Ejection, after Envoy's outlier detection: an endpoint that fails
// eject_after_failures times in a row (a connection failure or a 5xx
// answer) takes no requests for eject_duration, doubled each time it is
// ejected again within eject_duration of coming back (at most 32 times
// longer). At most max_ejected_percent of a name's endpoints (at least one)
// are ejected at once, so a fault that hits every replica, or the client's
// own network, does not empty the set; should all be ejected, all are used.
// While ejected an endpoint is not picked, so nothing dials it.

// maxEjectLevel caps the doubling: eject_duration << 5 = 32 × eject_duration.
const maxEjectLevel = 5

// failed is told by e's pool of a failure, the inARow-th in a row: a
// failed dial asks for the name to be resolved again, and at
// eject_after_failures e is ejected.
func (e *endpoint) failed(inARow int32, err error) {
	if err != nil && isDialError(err) {
		e.set.rs.wantResolve(e.set)
	}
	if int(inARow) >= e.set.rs.c.cfg.EjectAfterFailures {
		e.set.eject(e)
	}
}

// eject takes e out of the picks for its ejection time, if the cap allows.
// It runs only on the failure path, under the set's lock.
func (s *endpointSet) eject(e *endpoint) {
	c := s.rs.c
	cfg := c.cfg
	if cfg.MaxEjectedPercent <= 0 || e.draining.Load() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := c.now().UnixNano()
	if e.ejectedUntil.Load() > now {
		return
	}
	eps := s.list.Load().eps
	ejected := 0
	for _, o := range eps {
		if o.ejectedUntil.Load() > now {
			ejected++
		}
	}
	if ejected >= max(int(float64(len(eps))*cfg.MaxEjectedPercent/100), 1) {
		return // at the cap: failures keep counting, and the next one tries again
	}
	if e.lastEjectEnd > 0 && now-e.lastEjectEnd < int64(cfg.EjectDuration) {
		e.ejectLevel = min(e.ejectLevel+1, maxEjectLevel)
	} else {
		e.ejectLevel = 0
	}
	d := cfg.EjectDuration << e.ejectLevel
	e.lastEjectEnd = now + int64(d)
	e.ejectedUntil.Store(e.lastEjectEnd)
	e.ejections.Add(1)
	e.pool.signals.fails.Store(0)
	c.log.Warn("warmpool: endpoint ejected", "host", s.name, "endpoint", e.addr,
		"failures_in_a_row", cfg.EjectAfterFailures, "for", d)
}

// Endpoint states, as HostStats.EndpointState names them.
const (
	endpointActive   = "active"
	endpointEjected  = "ejected"
	endpointDraining = "draining"
	endpointRemoved  = "removed"
)

// state is e's state at now.
func (e *endpoint) state(now time.Time) string {
	switch {
	case e.removed.Load():
		return endpointRemoved
	case e.draining.Load():
		return endpointDraining
	case e.ejectedUntil.Load() > now.UnixNano():
		return endpointEjected
	}
	return endpointActive
}
