package warmpool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
	"time"
)

// reqState follows one attempt from RoundTrip until its body is done. It is
// also the response body handed to the caller, and the attempt's context
// (request_timeout over the caller's), so that a dial, whose context keeps
// the request's values, finds the attempt it was started for (stateFrom)
// without one more context.WithValue per request.
type reqState struct {
	context.Context
	c     *Client
	host  *hostPool
	conn  *conn // the connection serving the attempt now; request goroutine only
	trace httptrace.ClientTrace

	cancel context.CancelFunc
	slot   bool      // holds one of the host's request slots
	reused bool      // the connection had served a request before
	start  time.Time // set only when Hooks.RequestDone is
	status int
	err    error

	// Read by the HTTP/2 dial gate from dial goroutines.
	hasConn atomic.Bool   // the attempt holds a connection now
	gen     atomic.Uint32 // bumped when the attempt's wait for a connection starts, ends, or the attempt ends

	req        *http.Request // the attempt as sent
	body       io.ReadCloser
	n          int64
	limit      int64
	attempts   int         // set on the response handed to the caller
	ownsClient atomic.Bool // finish ends the call's hold on the client
	done       atomic.Bool
}

// servedOrDone reports whether the attempt has a connection or is over:
// then a dial started for it is not needed by it.
func (st *reqState) servedOrDone() bool { return st.hasConn.Load() || st.done.Load() }

// Value answers stateKey with st itself; other keys from the context.
func (st *reqState) Value(key any) any {
	if key == (stateKey{}) {
		return st
	}
	return st.Context.Value(key)
}

// getConn runs each time net/http looks for a connection for the request:
// once, or again when it replays the request after a reused connection
// failed before anything was written. A connection held from before is
// released then, so counts follow the request to its new connection.
func (st *reqState) getConn(string) {
	if c := st.conn; c != nil {
		st.conn = nil
		st.release(c)
	}
	st.hasConn.Store(false)
	st.gen.Add(1)
	st.host.gate.poke()
}

// gotConn runs when net/http hands the request a connection. Over HTTP/2
// it may run again for the same request, when net/http retries a stream the
// server refused or a GOAWAY cut off on another connection: the request then
// moves to that connection.
func (st *reqState) gotConn(info httptrace.GotConnInfo) {
	c := asConn(info.Conn)
	if c == nil {
		st.reused = info.Reused
		return
	}
	if c == st.conn {
		return
	}
	if old := st.conn; old != nil {
		st.release(old)
	}
	now := st.c.now()
	// net/http calls a connection reused once it has been in the idle
	// pool, even if no request ran on it yet: count served ones only.
	st.reused = c.take(now)
	st.host.holding.Add(1)
	st.conn = c
	if c.h2.Load() {
		storeMax(&st.host.maxStreams, int64(c.inUse.Load()))
	}
	if d := st.host.staleAfter(); d > 0 && st.reused && !c.h2.Load() && time.Duration(c.lastIdle.Load()) >= d &&
		st.req != nil && replayable(st.req) {
		// Idle past the server's learned timeout (its idle timer was late,
		// on a loaded machine): the server may be closing it now. Nothing
		// is written on it; net/http sends the request again on another.
		c.reason.CompareAndSwap(int32(closeUnknown), int32(closeLearnedIdle))
		c.stale.Store(true)
	}
	if c.retireAt != 0 && now.UnixNano() >= c.retireAt && st.req != nil {
		// Past max_connection_age: this request is its last. For
		// requests net/http does not copy (no body) this sends
		// Connection: close; for the rest, release closes it.
		st.req.Close = true
		c.retiring.Store(true)
	}
	st.hasConn.Store(true)
	st.gen.Add(1)
	st.host.gate.poke()
}

func (st *reqState) Read(p []byte) (int, error) {
	if rem := st.limit - st.n; int64(len(p)) > rem+1 {
		p = p[:rem+1] // read one byte past the limit to detect overflow
	}
	n, err := st.body.Read(p)
	st.n += int64(n)
	if st.n > st.limit {
		st.body.Close() // unread bytes remain: net/http closes the connection
		st.finish()
		return n - int(st.n-st.limit), fmt.Errorf("%w (%d bytes)", ErrResponseTooLarge, st.limit)
	}
	switch {
	case err == io.EOF:
		st.finish()
	case err != nil:
		err = st.c.closedErr(err)
	}
	return n, err
}

func (st *reqState) Close() error {
	err := st.body.Close()
	st.finish()
	return err
}

// release gives back the request's hold on c.
func (st *reqState) release(c *conn) {
	c.release(st.c.now())
	st.host.holding.Add(-1)
}

// finish releases everything the attempt held; it runs once.
func (st *reqState) finish() {
	if !st.done.CompareAndSwap(false, true) {
		return
	}
	st.cancel()
	h := st.host
	if c := st.conn; c != nil {
		// Counted here, on the connection that served the request in the
		// end, not on one net/http gave it first and then replaced; a
		// request the server closed the connection on, idle, never
		// reached it and is not counted.
		var ice *IdleCloseError
		if !errors.As(st.err, &ice) {
			h.requests.Add(1) // before reused, so a snapshot never shows more reused than requests
			// The first request counted on a connection is its only
			// one not reused, as the server counts.
			if !c.served.CompareAndSwap(false, true) {
				h.reused.Add(1)
				if f := st.c.hooks.ConnReused; f != nil {
					f(c.info())
				}
			}
		}
		st.release(c)
	}
	if st.err != nil {
		h.noteFailure(st.err)
	}
	h.inflight.Add(-1)
	st.releaseSlot()
	st.gen.Add(1)
	h.gate.poke()
	st.requestDone(st.req, st.err)
	if st.ownsClient.Load() {
		st.c.end()
	}
}

// requestDone calls Hooks.RequestDone for the attempt.
func (st *reqState) requestDone(req *http.Request, err error) {
	if f := st.c.hooks.RequestDone; f != nil {
		f(RequestInfo{Host: st.host.addr, HostName: st.host.name, Method: req.Method, StatusCode: st.status, Duration: st.c.now().Sub(st.start), Err: err})
	}
}

// explain turns what net/http returned into the error a caller can branch
// on: warmpool's own timer becomes the request_timeout error, and a request
// that broke a reused connection the server had just closed for idleness
// becomes an *IdleCloseError.
func (st *reqState) explain(ctx context.Context, req *http.Request, err error) error {
	if req.Context().Err() != nil {
		return err // the caller's context ended: their error, untouched
	}
	if cause := context.Cause(ctx); cause == st.c.timeoutErr {
		var te *TokenError
		if errors.As(err, &te) {
			return err // names the token source, and wraps the timeout
		}
		return cause
	}
	if c := st.conn; c != nil && st.reused && !c.readInUse.Load() && ErrorKind(err) == "reset" &&
		closeReason(c.reason.Load()) == closeServer {
		return &IdleCloseError{
			Method:     req.Method,
			URL:        redactURL(req.URL.String()),
			Idle:       time.Duration(c.lastIdle.Load()),
			Idempotent: isIdempotent(req),
			Err:        err,
		}
	}
	return err
}
