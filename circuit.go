package warmpool

import (
	"sync"
	"sync/atomic"
	"time"
)

// circuit is the one state of "this address is bad", for every pool: an
// address dialed as it is (the brief's case: one backend URL) or one
// endpoint of a balanced host name. Two rules open it, both fed by the
// failures in a row that health counts:
//
//   - The breaker (circuit_breaker_failures, off by default): after that many
//     failures in a row that say the server is down (refused, connect or
//     request timeout, reset, 502/503/504), calls to it fail at once with an
//     error matching ErrCircuitOpen, instead of each waiting out its own
//     request_timeout. After circuit_breaker_open_for one call at a time
//     probes it; a success closes the circuit, a failure opens it again.
//   - Ejection, after Envoy's outlier detection, for an endpoint of a
//     balanced name: after eject_after_failures failures in a row (any fault
//     of the server's, or a 5xx) the endpoint takes no requests for
//     eject_duration, doubled each time it is ejected again within
//     eject_duration of coming back (at most 32 times longer). At most
//     max_ejected_percent of a name's endpoints (at least one) are ejected at
//     once, so a fault that hits every replica, or the client's own network,
//     does not empty the set; should all be ejected, all are used. An ejected
//     endpoint is skipped by the balancer but never fails a call itself; it
//     comes back whole when its time is up.
//
// The balancer skips an endpoint whose circuit is open either way, so an
// idempotent call meets an open breaker only when every endpoint's is open.
type circuit struct {
	until     atomic.Int64 // unix nanos: open until then; 0: closed
	reason    atomic.Int32 // tripEject or tripBreaker, while until != 0
	probing   atomic.Bool  // a probe is out (the breaker, once until has passed)
	opens     atomic.Int64 // times the breaker opened
	ejections atomic.Int64
	rejected  atomic.Int64 // calls failed fast while the breaker was open

	mu      sync.Mutex // guards what follows: the trip path only
	level   uint       // the last ejection lasted eject_duration << level
	lastEnd int64      // unix nanos when the last ejection ended or ends
	cause   error      // the failure that opened the breaker
	fails   int32      // the failures in a row that opened it
}

const (
	tripEject int32 = iota + 1
	tripBreaker
)

// maxEjectLevel caps the doubling: eject_duration << 5 = 32 × eject_duration.
const maxEjectLevel = 5

// available reports whether the balancer may pick the pool now: not open,
// and not a breaker whose probe is out.
func (c *circuit) available(now int64) bool {
	until := c.until.Load()
	return until == 0 || now >= until && !(c.reason.Load() == tripBreaker && c.probing.Load())
}

// admit decides whether an attempt may go to the pool now. It fails only
// for an open breaker; once circuit_breaker_open_for has passed, it admits
// one probe at a time (probe true: end it with probeDone).
func (c *circuit) admit(now int64) (ok, probe bool) {
	until := c.until.Load()
	if until == 0 || c.reason.Load() != tripBreaker {
		return true, false // closed, or ejected: the balancer's business
	}
	if now >= until && c.probing.CompareAndSwap(false, true) {
		return true, true
	}
	c.rejected.Add(1)
	return false, false
}

// probeDone ends a probe: a success closes the circuit; a failure that says
// the server is down opens it again for openFor; anything else (the caller
// gave up) lets the next call probe.
func (c *circuit) probeDone(o outcome, now int64, openFor time.Duration) {
	switch {
	case !o.failed():
		c.until.Store(0)
	case o.down():
		c.mu.Lock()
		c.cause = o.err
		if c.cause == nil {
			c.cause = statusCause(o.status)
		}
		c.mu.Unlock()
		c.until.Store(now + int64(openFor))
		c.opens.Add(1)
	}
	c.probing.Store(false)
}

// closeAfterSuccess closes an open breaker after a success that was not its
// probe: a request the server held through the outage and then answered.
func (c *circuit) closeAfterSuccess() {
	if c.reason.Load() == tripBreaker {
		c.until.Store(0)
	}
}

// trip opens the breaker for openFor after fails down failures in a row,
// the last being o. It does nothing if the breaker is open already.
func (c *circuit) trip(o outcome, fails int32, now int64, openFor time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.until.Load() != 0 && c.reason.Load() == tripBreaker {
		return false
	}
	c.cause, c.fails = o.err, fails
	if c.cause == nil {
		c.cause = statusCause(o.status)
	}
	c.reason.Store(tripBreaker)
	c.until.Store(now + int64(openFor))
	c.opens.Add(1)
	return true
}

// eject takes the pool out of its name's picks, for eject_duration doubled
// per repeat. The caller holds the set's lock and has checked the cap.
func (c *circuit) eject(now int64, d time.Duration) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lastEnd > 0 && now-c.lastEnd < int64(d) {
		c.level = min(c.level+1, maxEjectLevel)
	} else {
		c.level = 0
	}
	d <<= c.level
	c.lastEnd = now + int64(d)
	c.reason.Store(tripEject)
	c.until.Store(c.lastEnd)
	c.ejections.Add(1)
	return d
}

// ejected reports whether the pool is ejected at now.
func (c *circuit) ejected(now int64) bool {
	return c.reason.Load() == tripEject && c.until.Load() > now
}

// state names the breaker's state at now: "closed", "open" or "half_open"
// (its time is up and a probe may go or is out). An ejection is no breaker
// state: the endpoint's state says it.
func (c *circuit) state(now int64) string {
	until := c.until.Load()
	switch {
	case until == 0 || c.reason.Load() != tripBreaker:
		return circuitClosed
	case now < until:
		return circuitOpen
	}
	return circuitHalfOpen
}

// Circuit states, as HostStats.CircuitState names them.
const (
	circuitClosed   = "closed"
	circuitOpen     = "open"
	circuitHalfOpen = "half_open"
)

// openError is the error of a call the open breaker failed at once.
func (c *circuit) openError(addr string, now int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &CircuitOpenError{Host: addr, Failures: int(c.fails), Cause: c.cause,
		RetryIn: max(time.Duration(c.until.Load()-now), 0)}
}

// ejectEndpoint ejects e, if the cap of its set allows, after fails failures
// in a row.
func ejectEndpoint(e *endpoint, fails int32, now int64) {
	s := e.set
	cfg := &s.rs.c.cfg
	if cfg.MaxEjectedPercent <= 0 || e.draining.Load() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.pool.circuit.ejected(now) || e.pool.circuit.state(now) != circuitClosed {
		return // ejected already, or the breaker, which is stricter, is open
	}
	eps := s.list.Load().eps
	ejected := 0
	for _, o := range eps {
		if o.pool.circuit.ejected(now) {
			ejected++
		}
	}
	if ejected >= max(int(float64(len(eps))*cfg.MaxEjectedPercent/100), 1) {
		return // at the cap: failures keep counting, and the next one tries again
	}
	d := e.pool.circuit.eject(now, cfg.EjectDuration)
	e.pool.health.fails.Store(0)
	s.rs.c.log.Warn("warmpool: endpoint ejected", "host", s.name, "endpoint", e.addr,
		"failures_in_a_row", fails, "for", d)
}
