package warmpool

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"time"
)

// pool is the connection pool of one dialed address: a "host:port" the
// client's transport dials, or one endpoint of a balanced host name. It is
// the one owner of what happens there. Its parts:
//
//   - conns: the open connections and how they closed (connSet);
//   - gate: which dials go ahead, and max_connections (dialGate);
//   - idle: the server's idle timeout, as learned (learnedIdle);
//   - health: latency and failures, measured once and read by the balancer,
//     the circuit, the limit, hedging and throttling (health);
//   - circuit: whether the address is bad: ejection and the breaker
//     (circuit);
//   - limit: the attempts it may have in flight (limiter);
//   - the request and dial counters Stats reads.
//
// Attempts talk to it through acquire and release (admission and the end of
// an attempt), gotConn and putConn (a connection held); the dialer through
// admitDial and track; connections through noteClose. Nothing below it
// reaches back up: a dial learns which attempt it serves only through the
// connWant net/http passes down in its context, as net/http's own wantConn.
type pool struct {
	addr    string
	name    string // for an endpoint of a balanced host name: that name; else ""
	env     *poolEnv
	ep      atomic.Pointer[endpoint] // the endpoint it serves now, if any
	tracked atomic.Bool              // requests are counted here (not a proxy's address)
	proto   atomic.Int32             // protoUnknown, protoHTTP1 or protoHTTP2, as last negotiated

	conns   connSet
	gate    dialGate
	idle    learnedIdle
	health  health
	circuit circuit
	limit   limiter

	inflight   atomic.Int64 // attempts between acquire and release
	holding    atomic.Int64 // of those, how many hold a connection
	peak       atomic.Int64 // highest inflight since the janitor last looked
	peakEver   atomic.Int64
	demand     []int64      // janitor only: peaks of the last demand window, one per tick
	maxStreams atomic.Int64 // most requests seen at once on one HTTP/2 connection
	requests   atomic.Int64 // attempts that got a connection and ended
	reused     atomic.Int64 // of those, on a connection that had served before
	failures   [numErrorKinds]atomic.Int64
	throttled  atomic.Int64 // attempts client-side throttling refused
	capWaits   capWaits     // attempts' waits at max_connections
	deadlined  atomic.Int64 // attempts refused for too little time left

	dialing       atomic.Int64
	dialFail      [dialKinds]atomic.Int64
	dialNanos     atomic.Int64 // total TCP connect time of successful dials
	tlsHandshakes atomic.Int64
	tlsNanos      atomic.Int64
}

// Protocols a pool's address was last seen to speak.
const (
	protoUnknown int32 = iota
	protoHTTP1
	protoHTTP2
)

var protoNames = [...]string{protoUnknown: "", protoHTTP1: "HTTP/1.1", protoHTTP2: "HTTP/2"}

func newPool(env *poolEnv, addr, name string) *pool {
	p := &pool{addr: addr, name: name, env: env}
	p.conns.m = make(map[*conn]struct{})
	p.gate.wake = make(chan struct{})
	p.limit.init(env.concurrencyLimit, env.limitQueue)
	p.health.interval = p.limit.adaptive
	return p
}

// acquire admits one attempt to p, or says why not, in this order: less
// time left before ctx's deadline than p's fastest recent answer took; an
// open breaker; client-side throttling; the concurrency limit (waiting up to
// limit_queue_timeout). Admitted, the attempt counts in flight until
// release. probe reports that it is the breaker's probe.
func (p *pool) acquire(ctx context.Context) (probe bool, err error) {
	now := p.env.now()
	if dl, ok := ctx.Deadline(); ok {
		if m := p.health.lat.min(now); m > 0 && dl.Sub(now) < m {
			p.deadlined.Add(1)
			return false, &deadlineError{host: p.addr, left: dl.Sub(now), min: m}
		}
	}
	ok, probe := p.circuit.admit(now.UnixNano())
	if !ok {
		return false, p.circuit.openError(p.addr, now.UnixNano())
	}
	if err = p.admit(ctx, now); err != nil {
		if probe {
			p.circuit.probing.Store(false)
		}
		return false, err
	}
	n := p.inflight.Load()
	storeMax(&p.peak, n)
	storeMax(&p.peakEver, n)
	if p.health.interval {
		storeMax(&p.health.ivPeak, n)
	}
	return probe, nil
}

// admit runs client-side throttling (health.throttled), then the
// concurrency limit.
func (p *pool) admit(ctx context.Context, now time.Time) error {
	if p.env.throttle {
		if reqs, accepts, refuse := p.health.throttled(now, p.env.rand); refuse {
			p.throttled.Add(1)
			return &OverloadError{Host: p.addr, Throttled: true, InFlight: int(p.inflight.Load()), Requests: reqs, Accepted: accepts}
		}
	}
	return p.limit.admit(ctx, &p.inflight, p.addr, p.env.now)
}

// release ends an attempt acquire admitted, with what it showed of the
// server: o, or nothing if the caller gave up first (gone: the caller's
// context ended, or the client is closing), though a caller's deadline
// passing in flight still counts as a drop for the concurrency limit.
func (p *pool) release(o outcome, gone, probe bool) {
	if o.err != nil {
		p.failures[errorKindIndex(ErrorKind(o.err))].Add(1)
	}
	now := p.env.now()
	switch {
	case gone:
		if errors.Is(o.err, context.DeadlineExceeded) {
			p.health.ivDrops.Add(1)
		}
		if probe {
			p.circuit.probing.Store(false)
		}
	case o.err == nil || serverFault(o.err):
		p.observe(o, now, probe)
	case probe:
		p.circuit.probing.Store(false)
	}
	p.limit.release(&p.inflight)
	p.limit.update(&p.health, p.inflight.Load(), now)
	p.gate.poke()
}

// observe feeds an attempt's outcome to p's health, and opens the circuit
// when the failures in a row reach a threshold: the breaker's
// (circuit_breaker_failures down failures) or, for an endpoint, ejection's
// (eject_after_failures failures). A failed dial of an endpoint asks for its
// name to be resolved again.
func (p *pool) observe(o outcome, now time.Time, probe bool) {
	if p.env.throttle {
		p.health.throttle.add(now, 1, 0) // a request sent and ended; observe adds its accept
	}
	fails, downs := p.health.observe(o, now)
	ns := now.UnixNano()
	if probe {
		p.circuit.probeDone(o, ns, p.env.openFor)
	} else if !o.failed() && p.circuit.state(ns) != circuitClosed {
		p.circuit.closeAfterSuccess() // any answer shows it is back, the probe's or one held through the outage
	} else if b := p.env.breakerFailures; b > 0 && downs >= b && p.circuit.trip(o, downs, ns, p.env.openFor) {
		p.env.log("warmpool: circuit opened", "host", p.addr, "failures_in_a_row", downs, "for", p.env.openFor)
	}
	ep := p.ep.Load()
	if ep == nil || fails == 0 {
		return
	}
	if o.err != nil && isDialError(o.err) {
		ep.set.rs.wantResolve(ep.set)
	}
	if fails >= p.env.ejectAfter {
		ejectEndpoint(ep, fails, ns)
	}
}

// busy reports whether p looks overloaded now: at its concurrency limit,
// shedding load (a 429, 503 or timeout in the last second), throttled, or
// with its circuit open. Hedging stays away from it.
func (p *pool) busy(now time.Time) bool {
	if lim := p.limit.limit.Load(); lim > 0 && p.inflight.Load() >= lim {
		return true
	}
	if now.UnixNano()-p.health.lastDrop.Load() < int64(time.Second) {
		return true
	}
	if p.env.throttle && p.health.throttling(now) {
		return true
	}
	return !p.circuit.available(now.UnixNano())
}

// refuse counts an attempt that failed before acquire admitted it.
func (p *pool) refuse(err error) { p.failures[errorKindIndex(ErrorKind(err))].Add(1) }

// gotConn records that an attempt holds c from now, and reports whether c
// had served a request before.
func (p *pool) gotConn(c *conn, now time.Time) (reused bool) {
	reused = c.take(now)
	p.holding.Add(1)
	if c.h2.Load() {
		storeMax(&p.maxStreams, int64(c.inUse.Load()))
	}
	return reused
}

// putConn ends an attempt's hold on c. counted says whether the attempt is
// counted as a request served on c: not when the server closed c, idle,
// under it, as then the request never reached the server.
func (p *pool) putConn(c *conn, now time.Time, counted bool) {
	if counted {
		p.requests.Add(1) // before reused, so a snapshot never shows more reused than requests
		// The first request counted on a connection is its only one not
		// reused, as the server counts.
		if !c.served.CompareAndSwap(false, true) {
			p.reused.Add(1)
			if f := p.env.hooks.ConnReused; f != nil {
				f(c.info())
			}
		}
	}
	c.release(now)
	p.holding.Add(-1)
}

// admitDial returns once a dial for w may go ahead (see dialGate), with the
// function to call when the dial has ended. w is nil for a dial no attempt
// of this pool asked for.
func (p *pool) admitDial(ctx context.Context, w *connWant) (done func(ok bool), err error) {
	if !p.tracked.Load() {
		return func(bool) {}, nil // a proxy's address: net/http alone decides
	}
	return p.gate.enter(ctx, p, w)
}

// track wraps a new connection and counts it open until it closes.
func (p *pool) track(nc net.Conn) *conn {
	now := p.env.now()
	c := &conn{Conn: nc, pool: p, born: now}
	c.idleSince.Store(now.UnixNano())
	if age := p.env.maxAge; age > 0 {
		// ±10 % jitter so connections dialed together do not retire together.
		c.retireAt = now.Add(time.Duration(float64(age) * (0.9 + 0.2*p.env.rand()))).UnixNano()
	}
	p.conns.add(c)
	if f := p.env.hooks.ConnOpened; f != nil {
		f(c.info()) // as Stats counts it: once connected, before any TLS handshake
	}
	return c
}

// noteClose counts c closed for reason r; a held dial may be needed now.
func (p *pool) noteClose(c *conn, r closeReason) {
	p.conns.remove(c, r)
	p.gate.poke()
	if f := p.env.hooks.ConnClosed; f != nil {
		f(c.info(), r.String())
	}
}

// noteDial counts a TCP connect that ended: took is the connect time of a
// successful one, err the failure of another.
func (p *pool) noteDial(took time.Duration, err error) {
	if err != nil {
		p.noteDialFailure(dialKindOf(err))
		return
	}
	p.dialNanos.Add(int64(took))
}

// noteDialFailure counts a connection attempt that failed for kind.
func (p *pool) noteDialFailure(kind dialKind) { p.dialFail[kind].Add(1) }

// noteHandshake counts a TLS handshake done in took.
func (p *pool) noteHandshake(took time.Duration) {
	p.tlsHandshakes.Add(1)
	p.tlsNanos.Add(int64(took))
}

// speaksHTTP2 reports whether p speaks HTTP/2, or may: the protocol is not
// known yet and the client offers HTTP/2.
func (p *pool) speaksHTTP2() bool {
	switch p.proto.Load() {
	case protoHTTP2:
		return true
	case protoUnknown:
		return p.env.http2 || p.env.h2c
	}
	return p.env.h2c
}

// dialsNeeded is how many dials to p may run at once, max_connections
// apart (the gate caps open and dialing connections at it).
//
// Over HTTP/1.1: as many as attempts wait for a connection beyond the idle
// connections (on their way to a waiting attempt). Over HTTP/2: one, or,
// when attempts wait while connections are open (net/http dials only when
// none can take another: they are full, or draining after a GOAWAY), enough
// connections for the waiting attempts at the most streams a connection of
// p has been seen to carry. That figure never falls, so a connection
// draining after a GOAWAY (whose streams end one by one) cannot make it
// look small, and after a GOAWAY one dial goes at a time. None while a new
// HTTP/2 connection waits for its first request.
func (p *pool) dialsNeeded() int {
	waiting := p.inflight.Load() - p.holding.Load()
	conns := p.conns.list()
	if !p.speaksHTTP2() {
		var idle int64
		for _, c := range conns {
			if c.inUse.Load() == 0 {
				idle++
			}
		}
		return int(max(waiting-idle, 0))
	}
	for _, c := range conns {
		if c.h2.Load() && c.inUse.Load() == 0 && !c.served.Load() && !c.failed.Load() {
			// A new connection no request has taken yet is on its way to
			// the waiting attempts: net/http would drop another dialed now.
			return 0
		}
	}
	perConn := p.maxStreams.Load()
	if waiting <= 1 || perConn <= 1 || p.conns.open.Load() == 0 {
		return 1
	}
	return int((waiting + perConn - 1) / perConn)
}

// atCapLocked reports whether p has max_connections open or dialing, with
// dialing dials let through its gate (the gate's lock held).
func (p *pool) atCapLocked(dialing int) bool {
	return p.conns.open.Load()+int64(dialing) >= int64(p.env.maxConns)
}

// announceReplacement marks p's HTTP/2 connections in use, or used a moment
// ago, as being replaced: net/http dials for an HTTP/2 host only when no open
// connection can take another stream (full, or draining after a GOAWAY), so
// when one of them later closes, that is no idle timeout to learn (a server
// that ends connections after N requests closes them a while after their
// last stream).
func (p *pool) announceReplacement() {
	if p.proto.Load() != protoHTTP2 {
		return
	}
	now := p.env.now().UnixNano()
	for _, c := range p.conns.list() {
		if c.inUse.Load() != 0 || now-c.idleSince.Load() < int64(minLearnedIdle) {
			c.announced.Store(true)
		}
	}
}

// learnFromClose learns from the server closing a connection that had been
// idle for idle, and arms the idle connections' timers if that taught a new
// timeout.
func (p *pool) learnFromClose(idle time.Duration) {
	if p.env.learnIdle && p.idle.fromClose(idle, p.env.idleExpiry) {
		p.learned()
	}
}

// learnFromHeader honours a Keep-Alive: timeout=N answer header.
func (p *pool) learnFromHeader(h map[string][]string) {
	if p.env.learnIdle && p.idle.fromHeader(h, p.env.idleExpiry) {
		p.learned()
	}
}

// learned logs a new idle timeout and arms the idle connections' timers.
func (p *pool) learned() {
	d, src := p.idle.get()
	if d == 0 {
		p.env.log("warmpool: server idle timeout no longer limits reuse", "host", p.addr)
		return
	}
	stale := p.idle.staleAfter()
	p.env.log("warmpool: learned server idle timeout", "host", p.addr, "idle_timeout", d,
		"from", src, "close_idle_after", stale, "keepalive_expiry", p.env.idleExpiry)
	now := p.env.now().UnixNano()
	for _, c := range p.conns.list() {
		if c.inUse.Load() == 0 {
			c.armIdle(max(stale-time.Duration(now-c.idleSince.Load()), time.Millisecond))
		}
	}
}

// trimIdle makes idle retention follow demand: it keeps as many idle
// connections as attempts were in flight at the peak of the last demand
// window, at least keep, and closes the rest, longest idle first. slots is
// how many janitor ticks make up the window. It runs on the janitor's
// goroutine only.
//
// net/http's MaxIdleConnsPerHost is set to max_connections, so that a steady
// load at any concurrency up to it never closes a connection only to dial
// it again (with MaxIdleConnsPerHost = max_keepalive_connections, 32 callers
// against the default 20 do: TestDefaultConfigSteadyLoadDoesNotChurn). This
// trim is what makes max_keepalive_connections the number of idle
// connections kept once a burst is over: within seconds, rather than after
// keepalive_expiry (TestIdleRetentionTrimsSoonAfterBurst).
func (p *pool) trimIdle(keep, slots int) {
	p.demand = append(p.demand, p.peak.Swap(p.inflight.Load()))
	if len(p.demand) > slots {
		p.demand = p.demand[len(p.demand)-slots:]
	}
	allowed := int64(keep)
	for _, n := range p.demand {
		allowed = max(allowed, n)
	}
	p.conns.trimIdle(allowed)
}

// stats is p's part of a Stats snapshot.
func (p *pool) stats(now time.Time) HostStats {
	s := HostStats{
		Protocol:         protoNames[p.proto.Load()],
		Dialing:          p.dialing.Load(),
		InFlight:         p.inflight.Load(),
		Created:          p.conns.created.Load(),
		Reused:           p.reused.Load(), // before requests: see putConn
		Requests:         p.requests.Load(),
		PeakInFlight:     p.peakEver.Load(),
		DialTime:         time.Duration(p.dialNanos.Load()),
		TLSHandshakes:    p.tlsHandshakes.Load(),
		TLSHandshakeTime: time.Duration(p.tlsNanos.Load()),
	}
	p.gate.stats(&s)
	p.capWaits.stats(&s)
	for k := range dialKinds {
		*s.DialFailures.field(k) = p.dialFail[k].Load()
	}
	if ep := p.ep.Load(); ep != nil {
		s.HostName = p.name
		s.EndpointState = ep.state(now)
		s.Ejections = p.circuit.ejections.Load()
	}
	s.Open, s.InUse = p.conns.counts()
	s.Idle = s.Open - s.InUse
	s.Closed, s.ClosedBy = p.conns.closedBy()
	for i := range p.failures {
		if n := p.failures[i].Load(); n > 0 {
			if s.FailuresByKind == nil {
				s.FailuresByKind = make(map[string]int64)
			}
			s.FailuresByKind[errorKinds[i]] = n
			s.Failures += n
		}
	}
	if d, src := p.idle.get(); d > 0 {
		s.LearnedIdleTimeout, s.LearnedIdleTimeoutFrom = d, src
	}
	var lat [numLatencyBuckets]int64
	s.setLatency(&lat, p.health.lat.counts(now, &lat))
	s.LatencyMin = p.health.lat.min(now)
	s.ConcurrencyLimit = p.limit.limit.Load()
	s.LimitWaiting = p.limit.queued.Load()
	s.LimitWaits = p.limit.waits.Load()
	s.LimitWaitTime = time.Duration(p.limit.waitNs.Load())
	s.Overloaded = p.limit.rejected.Load()
	s.Throttled = p.throttled.Load()
	s.CircuitState = p.circuit.state(now.UnixNano())
	s.CircuitOpens = p.circuit.opens.Load()
	s.CircuitRejections = p.circuit.rejected.Load()
	s.DeadlineRejections = p.deadlined.Load()
	return s
}
