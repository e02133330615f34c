package warmpool

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// dialGate lets through only the dials that waiting requests need.
//
// net/http dials once for every request that finds no idle connection, and
// lets the dial run on when another connection frees up first and serves the
// request (golang/go#66442): the surplus connection then sits idle.
//
// Over HTTP/1.1 that happens all the time at a steady load: a caller's next
// request often asks for a connection a moment before net/http has put its
// previous one back in the pool, so 50 callers end up with 56 connections
// (TestConcurrentCallersReuseWarmConnections). The gate holds a dial while
// idle connections and dials under way can serve every waiting request, and
// drops it as soon as the request it was started for has a connection.
//
// Over HTTP/2 one connection serves many requests, so when the only
// connection ends (GOAWAY), fills up (the server's MaxConcurrentStreams), or
// before the first one is open, N waiting requests start N dials, of which
// net/http keeps one and closes the rest unused: with a GOAWAY every 100
// streams and 32 callers, most of the connections made. For a host that
// speaks HTTP/2 or may (TLS with h2 offered and the protocol not yet known,
// or h2c), the gate lets through one dial, or ⌈waiting requests / streams
// per connection⌉ when the open connections are full, and holds the others
// until the request that asked for each has a connection (net/http hands a
// new HTTP/2 connection to every request waiting for one) or asks again
// (then net/http starts a new dial for it, which comes to the gate again),
// or until a dial under way fails.
//
// It also enforces max_connections, for both protocols: at that many open
// and dialing connections a dial waits for one to close, up to pool_timeout
// (or connection_timeout if that is shorter), then fails with
// ErrPoolTimeout.
//
// The gate waits only on events: a dial ending, a connection closing, a held
// request getting a connection, asking for another, or ending. It never
// polls, and it never holds a dial that the server's stream limit or a
// GOAWAY makes necessary. connection_timeout bounds a held dial's wait
// together with the dial itself.
type dialGate struct {
	mu      sync.Mutex
	dialing int           // dials let through and not yet ended; guarded by mu
	failed  int           // dials let through that failed, ever; guarded by mu
	wake    chan struct{} // closed and replaced to wake every held dial; guarded by mu
	held    atomic.Int32  // dials held now: events wake the gate only when > 0

	avoided atomic.Int64 // dials held and then not needed
}

// errDialNotNeeded ends a dial that no attempt needs any more: the attempt
// it was started for got a connection another way. net/http drops the
// error, as that attempt's wait is over.
var errDialNotNeeded = errors.New("warmpool: dial not needed: the request got a connection another way")

// enter returns once the dial for w may go ahead, with the function to call
// when it has ended (ok reports whether it opened a connection), or an
// error: errDialNotNeeded, an error matching ErrPoolTimeout, ErrClosed, or
// ctx's (connection_timeout).
//
// A dial goes ahead while p is under max_connections and fewer dials run
// than waiting attempts need. At max_connections it waits up to
// pool_timeout for a connection to close (this is the one place
// max_connections is enforced; net/http's MaxConnsPerHost is left unset, as
// its queue has no timeout). Otherwise it is held until the attempt it was
// started for gets a connection or asks again (not needed: net/http hands a
// new HTTP/2 connection to every attempt waiting for one, and an attempt
// that finds it full asks again, coming back with a new dial), or until a
// dial under way fails (then it may go ahead in its place).
func (g *dialGate) enter(ctx context.Context, p *pool, w *connWant) (release func(ok bool), err error) {
	if w != nil && w.satisfied() {
		g.avoided.Add(1)
		return nil, errDialNotNeeded
	}
	var gen uint32
	if w != nil {
		gen = w.gen.Load()
	}
	// held is raised before the state is read, so that an event that
	// changes the state after the read finds held > 0 and wakes us.
	g.held.Add(1)
	defer g.held.Add(-1)
	var capTimer *time.Timer // pool_timeout, from the first time at max_connections
	var capSince time.Time
	defer func() {
		if capTimer != nil {
			capTimer.Stop()
		}
	}()
	recheck := true
	failed := 0
	for {
		g.mu.Lock()
		// At max_connections, a dial that is needed waits for a close;
		// one that is not (idle connections are on their way to the
		// waiting attempts) is held as any other.
		need := p.dialsNeeded()
		atCap := g.dialing < need && p.atCapLocked(g.dialing)
		if recheck && !atCap && g.dialing < need {
			g.dialing++
			g.mu.Unlock()
			return g.leave, nil
		}
		if recheck {
			failed = g.failed
		}
		wake := g.wake
		g.mu.Unlock()
		var timeout <-chan time.Time
		if atCap {
			if capTimer == nil {
				capSince, capTimer = p.env.now(), time.NewTimer(p.env.poolTimeout)
				if w != nil && !p.capWaits.started(p, w, capSince) {
					g.avoided.Add(1)
					return nil, errDialNotNeeded
				}
			}
			timeout = capTimer.C
		}
		select {
		case <-wake:
		case <-timeout:
			return nil, fmt.Errorf("%w after %s: all %d connections to %s busy", ErrPoolTimeout, p.env.poolTimeout, p.env.maxConns, p.addr)
		case <-ctx.Done(): // connection_timeout, counted from the gate
			if atCap {
				return nil, fmt.Errorf("%w after %s (connection_timeout): all %d connections to %s busy", ErrPoolTimeout, p.env.now().Sub(capSince).Round(time.Millisecond), p.env.maxConns, p.addr)
			}
			return nil, context.Cause(ctx)
		case <-p.env.done:
			return nil, ErrClosed
		}
		if w != nil && (w.gen.Load() != gen || w.satisfied()) {
			g.avoided.Add(1)
			return nil, errDialNotNeeded
		}
		// Over HTTP/2, while no dial failed, a new connection is on its
		// way to this attempt: wait for it rather than dial again. At
		// max_connections, a close makes room.
		g.mu.Lock()
		recheck = atCap || g.failed != failed || !p.speaksHTTP2()
		g.mu.Unlock()
	}
}

// leave ends a dial let through and wakes the held ones.
func (g *dialGate) leave(ok bool) {
	g.mu.Lock()
	g.dialing--
	if !ok {
		g.failed++
	}
	g.broadcastLocked()
	g.mu.Unlock()
}

// poke wakes the held dials, if any: an attempt's wait for a connection
// ended or started again, or a connection closed.
func (g *dialGate) poke() {
	if g.held.Load() == 0 {
		return
	}
	g.mu.Lock()
	g.broadcastLocked()
	g.mu.Unlock()
}

func (g *dialGate) broadcastLocked() {
	close(g.wake)
	g.wake = make(chan struct{})
}

// stats adds the gate's figures to s.
func (g *dialGate) stats(s *HostStats) { s.DialsAvoided = g.avoided.Load() }

// connWant is one attempt's want of a connection from its pool, as
// net/http's wantConn is the request's: the pool's handle on a waiting
// attempt, and nothing else of it. It is also the attempt's context
// (request_timeout over the caller's), answering wantKey with itself, so a
// dial net/http starts for the attempt (whose context keeps the request's
// values) reaches the pool's gate with the want it serves, without one more
// context.WithValue per attempt.
type connWant struct {
	context.Context
	has      atomic.Bool   // the attempt holds a connection now
	done     atomic.Bool   // the attempt is over
	gen      atomic.Uint32 // bumped when the wait for a connection starts or ends, and at the end
	capSince atomic.Int64  // unix nanos: since when it waits at max_connections; 0: it does not
}

type wantKey struct{}

// Value answers wantKey with w itself; other keys from the context.
func (w *connWant) Value(key any) any {
	if key == (wantKey{}) {
		return w
	}
	return w.Context.Value(key)
}

// wantFrom returns the want a dial was started for, or nil.
func wantFrom(ctx context.Context) *connWant {
	w, _ := ctx.Value(wantKey{}).(*connWant)
	return w
}

// satisfied reports whether the attempt has a connection or is over: then
// a dial started for it is not needed by it.
func (w *connWant) satisfied() bool { return w.has.Load() || w.done.Load() }

// set marks the start of a wait for a connection (has false) or its end
// (has true).
func (w *connWant) set(has bool) {
	w.has.Store(has)
	w.gen.Add(1)
}

// end marks the attempt over; it reports false if it already was.
func (w *connWant) end() bool {
	if !w.done.CompareAndSwap(false, true) {
		return false
	}
	w.gen.Add(1)
	return true
}

// capWaits counts a pool's attempts that waited at max_connections (their
// gate found the pool there). It is counted as the attempt saw the wait end
// (a dial held at the limit cannot know whether a connection reached its
// attempt as its pool_timeout fired), so that Stats, the hooks and the
// callers agree.
type capWaits struct {
	waiting  atomic.Int64 // attempts waiting now
	waits    atomic.Int64 // attempts that waited
	waitNs   atomic.Int64 // the time they waited
	timeouts atomic.Int64 // of those, the ones that failed with ErrPoolTimeout
}

// started records that w waits at max_connections at p: counted in
// Waiting and reported to Hooks.WaitStart once per wait. It returns false,
// counting nothing, if w's attempt has its connection or is over already.
func (cw *capWaits) started(p *pool, w *connWant, now time.Time) bool {
	if w.satisfied() || !w.capSince.CompareAndSwap(0, now.UnixNano()) {
		return !w.satisfied()
	}
	cw.waiting.Add(1)
	if f := p.env.hooks.WaitStart; f != nil {
		f(p.addr)
	}
	if w.satisfied() { // it got one as the wait began: end it here
		cw.ended(p, w, now, nil)
		return false
	}
	return true
}

// ended ends w's wait at max_connections, if one is on: err is nil when the
// attempt got a connection, else what it failed with.
func (cw *capWaits) ended(p *pool, w *connWant, now time.Time, err error) {
	since := w.capSince.Swap(0)
	if since == 0 {
		return
	}
	waited := time.Duration(now.UnixNano() - since)
	cw.waiting.Add(-1)
	cw.waits.Add(1)
	cw.waitNs.Add(int64(waited))
	if errors.Is(err, ErrPoolTimeout) {
		cw.timeouts.Add(1)
	}
	if f := p.env.hooks.WaitEnd; f != nil {
		f(p.addr, waited, err)
	}
}

// stats adds the waits to s.
func (cw *capWaits) stats(s *HostStats) {
	s.Waiting, s.Waits, s.WaitTime, s.PoolTimeouts = cw.waiting.Load(), cw.waits.Load(), time.Duration(cw.waitNs.Load()), cw.timeouts.Load()
}
