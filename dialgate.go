package warmpool

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
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
	held    atomic.Int32  // dials held now: the request path wakes the gate only when > 0
}

// errDialNotNeeded ends a dial that no request needs any more: the request
// it was started for got a connection another way. net/http drops the error,
// as that request's wait is over.
var errDialNotNeeded = errors.New("warmpool: dial not needed: the request got a connection another way")

// enter returns once the dial may go ahead, with the function to call when
// it has ended (ok reports whether it opened a connection), or an error:
// errDialNotNeeded, ErrClosed, or the dial context's.
//
// A dial arriving at the gate goes ahead if fewer dials run than waiting
// requests need. Otherwise it is held until the request it was started for
// gets a connection or asks again (not needed: net/http hands a new HTTP/2
// connection to every request waiting for one, and a request that finds it
// full asks again, coming back to the gate with a new dial), or until a dial
// under way fails (then it may go ahead in its place).
func (g *dialGate) enter(ctx context.Context, h *hostPool, st *reqState) (release func(ok bool), err error) {
	if st != nil && st.servedOrDone() {
		h.dialsAvoided.Add(1)
		return nil, errDialNotNeeded
	}
	var gen uint32
	if st != nil {
		gen = st.gen.Load()
	}
	// held is raised before the state is read, so that an event that
	// changes the state after the read finds held > 0 and wakes us.
	g.held.Add(1)
	defer g.held.Add(-1)
	recheck := true
	var wake <-chan struct{}
	failed := 0
	for {
		g.mu.Lock()
		if recheck {
			if g.dialing < h.dialsNeeded() {
				g.dialing++
				g.mu.Unlock()
				return g.leave, nil
			}
			failed = g.failed
		}
		wake = g.wake
		g.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done(): // connection_timeout, counted from the gate
			return nil, context.Cause(ctx)
		case <-h.d.done:
			return nil, ErrClosed
		}
		if st != nil && (st.gen.Load() != gen || st.servedOrDone()) {
			h.dialsAvoided.Add(1)
			return nil, errDialNotNeeded
		}
		// Over HTTP/2, while no dial failed, a new connection is on its
		// way to this request: wait for it rather than dial again.
		g.mu.Lock()
		recheck = g.failed != failed || !h.speaksHTTP2()
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

// poke wakes the held dials, if any: a request's wait for a connection
// ended or started again.
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

// speaksHTTP2 reports whether h speaks HTTP/2, or may: the protocol is not
// known yet and the client offers HTTP/2.
func (h *hostPool) speaksHTTP2() bool {
	switch h.proto.Load() {
	case protoHTTP2:
		return true
	case protoUnknown:
		return h.d.http2 || h.d.h2c
	}
	return h.d.h2c
}

// dialsNeeded is how many dials to h may run at once.
//
// Over HTTP/1.1: as many as requests wait for a connection beyond the idle
// connections (on their way to a waiting request). Over HTTP/2: one, or, when
// requests wait while connections are open (net/http dials only when none
// can take another: they are full, or draining after a GOAWAY), enough
// connections for the waiting requests at the most streams a connection of h
// has been seen to carry. That figure never falls, so a connection draining
// after a GOAWAY (whose streams end one by one) cannot make it look small,
// and after a GOAWAY one dial goes at a time. None while a new HTTP/2
// connection waits for its first request.
func (h *hostPool) dialsNeeded() int {
	waiting := h.inflight.Load() - h.holding.Load()
	if !h.speaksHTTP2() {
		var idle int64
		for _, c := range h.connList() {
			if c.inUse.Load() == 0 {
				idle++
			}
		}
		return int(max(waiting-idle, 0))
	}
	for _, c := range h.connList() {
		if c.h2.Load() && c.inUse.Load() == 0 && !c.served.Load() && !c.failed.Load() {
			// A new connection no request has taken yet is on its way to
			// the waiting requests: net/http would drop another dialed now.
			return 0
		}
	}
	perConn := h.maxStreams.Load()
	if waiting <= 1 || perConn <= 1 || h.open.Load() == 0 {
		return 1
	}
	return int((waiting + perConn - 1) / perConn)
}

// stateKey is the context key of the reqState of an attempt, so that a
// dial (whose context keeps the request's values) knows which request it
// was started for.
type stateKey struct{}

func stateFrom(ctx context.Context) *reqState {
	st, _ := ctx.Value(stateKey{}).(*reqState)
	return st
}
