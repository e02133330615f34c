package warmpool

import (
	"context"
	"sync/atomic"
)

// connWant is one attempt's want of a connection from its pool, as
// net/http's wantConn is the request's: the pool's handle on a waiting
// attempt, and nothing else of it. It is also the attempt's context
// (request_timeout over the caller's), answering wantKey with itself, so a
// dial net/http starts for the attempt (whose context keeps the request's
// values) reaches the pool's gate with the want it serves, without one more
// context.WithValue per attempt.
type connWant struct {
	context.Context
	has  atomic.Bool   // the attempt holds a connection now
	done atomic.Bool   // the attempt is over
	gen  atomic.Uint32 // bumped when the wait for a connection starts or ends, and at the end
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
