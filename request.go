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

	"github.com/warmpool/warmpool/internal/redact"
)

// attempt follows one attempt of a call from the pool's admission until its
// response body is done. It talks to its pool only: want is what the pool's
// gate sees of it, and the connection it holds is taken and given back
// through the pool.
type attempt struct {
	want   connWant // also the attempt's context: request_timeout over the caller's
	c      *Client
	p      *pool
	caller context.Context // the caller's context: its end says nothing of the server
	cancel context.CancelFunc
	conn   *conn // the connection serving the attempt now; request goroutine only
	trace  httptrace.ClientTrace
	body   respBody

	req    *http.Request // the attempt as sent
	reused bool          // the connection had served a request before
	probe  bool          // the circuit breaker's probe

	cancelParent context.CancelFunc // nil, or cancels the context the attempt was sent with (a hedged pair's)
	start        time.Time
	sent         time.Time // when it first got a connection: its latency, for health, runs from here
	status       int
	err          error
	attempts     int         // set on the response handed to the caller
	ownsClient   atomic.Bool // finish ends the call's hold on the client
}

// getConn runs each time net/http looks for a connection for the attempt:
// once, or again when it replays the attempt after a reused connection
// failed before anything was written. A connection held from before is
// given back then, so counts follow the attempt to its new connection.
func (a *attempt) getConn(string) {
	if c := a.conn; c != nil {
		a.conn = nil
		a.p.putConn(c, a.c.now(), false)
	}
	a.want.set(false)
	a.p.gate.poke()
}

// gotConn runs when net/http hands the attempt a connection. Over HTTP/2 it
// may run again for the same attempt, when net/http retries a stream the
// server refused or a GOAWAY cut off on another connection: the attempt then
// moves to that connection.
func (a *attempt) gotConn(info httptrace.GotConnInfo) {
	c := asConn(info.Conn)
	if c == nil {
		a.reused = info.Reused
		return
	}
	if c == a.conn {
		return
	}
	now := a.c.now()
	if old := a.conn; old != nil {
		a.p.putConn(old, now, false)
	}
	// net/http calls a connection reused once it has been in the idle
	// pool, even if no request ran on it yet: count served ones only.
	a.reused = a.p.gotConn(c, now)
	a.conn = c
	if a.sent.IsZero() {
		a.sent = now
	}
	if d := a.p.idle.staleAfter(); d > 0 && a.reused && !c.h2.Load() && time.Duration(c.lastIdle.Load()) >= d &&
		a.req != nil && replayable(a.req) {
		// Idle past the server's learned timeout (its idle timer was late,
		// on a loaded machine): the server may be closing it now. Nothing
		// is written on it; net/http sends the request again on another.
		c.reason.CompareAndSwap(int32(closeUnknown), int32(closeLearnedIdle))
		c.stale.Store(true)
	}
	if c.retireAt != 0 && now.UnixNano() >= c.retireAt && a.req != nil {
		// Past max_connection_age: this request is its last. For
		// requests net/http does not copy (no body) this sends
		// Connection: close; for the rest, putConn closes it.
		a.req.Close = true
		c.retiring.Store(true)
	}
	a.want.set(true)
	a.p.capWaits.ended(a.p, &a.want, now, nil)
	a.p.gate.poke()
}

// finish ends the attempt: it gives back the connection and the pool's
// admission, tells the pool what the attempt showed of its server, and calls
// Hooks.RequestDone. It runs once.
func (a *attempt) finish() {
	if !a.want.end() {
		return
	}
	// The caller's own cancellation and the client's closing say nothing
	// about the server; read before the hedge's context is cancelled below.
	gone := a.caller.Err() != nil || a.c.closing.Load()
	// A caller's deadline that passed while the server had the request
	// says it did not answer in time.
	late := gone && a.conn != nil && errors.Is(context.Cause(a.caller), context.DeadlineExceeded)
	a.cancel()
	if a.cancelParent != nil {
		a.cancelParent()
	}
	p := a.p
	now := a.c.now()
	p.capWaits.ended(p, &a.want, now, a.err)
	if c := a.conn; c != nil {
		// Counted on the connection that served the request in the end,
		// not on one net/http gave it first and then replaced; a request
		// the server closed the connection on, idle, never reached it.
		p.putConn(c, now, !isIdleClose(a.err))
	}
	sent := a.sent
	if sent.IsZero() {
		sent = a.start
	}
	o := outcome{took: now.Sub(sent), status: a.status, err: a.err}
	if late {
		o.err = a.c.timeoutErr // counted as the server's timeout, not the caller's choice
		gone = false
	} else if gone && a.cancelParent != nil && errors.Is(a.err, context.Canceled) {
		o.err = nil // the loser of a hedged pair, cancelled: no failure of anyone's
	}
	p.release(o, gone, a.probe)
	a.done(a.err)
	if a.ownsClient.Load() {
		a.c.end()
	}
}

// isIdleClose reports whether err is an *IdleCloseError.
func isIdleClose(err error) bool {
	if err == nil {
		return false
	}
	_, ok := errors.AsType[*IdleCloseError](err)
	return ok
}

// done calls Hooks.RequestDone for the attempt.
func (a *attempt) done(err error) {
	if f := a.c.hooks.RequestDone; f != nil {
		f(RequestInfo{Host: a.p.addr, HostName: a.p.name, Method: a.req.Method, StatusCode: a.status, Duration: a.c.now().Sub(a.start), Err: err})
	}
}

// explain turns what net/http returned into the error a caller can branch
// on: warmpool's own timer becomes the request_timeout error, and a request
// that broke a reused connection the server had just closed for idleness
// becomes an *IdleCloseError.
func (a *attempt) explain(err error) error {
	if a.caller.Err() != nil {
		return err // the caller's context ended: their error, untouched
	}
	if cause := context.Cause(&a.want); cause == a.c.timeoutErr {
		var te *TokenError
		if errors.As(err, &te) {
			return err // names the token source, and wraps the timeout
		}
		return cause
	}
	if c := a.conn; c != nil && a.reused && !c.readInUse.Load() && ErrorKind(err) == "reset" &&
		closeReason(c.reason.Load()) == closeServer {
		return &IdleCloseError{
			Method:     a.req.Method,
			URL:        redact.URL(a.req.URL.String()),
			Idle:       time.Duration(c.lastIdle.Load()),
			Idempotent: isIdempotent(a.req),
			Err:        err,
		}
	}
	return err
}

// respBody is the response body handed to the caller: it caps the body at
// max_response_bytes and ends its attempt when the body is read to the end
// or closed.
type respBody struct {
	rc    io.ReadCloser
	n     int64
	limit int64
	a     *attempt
}

func (b *respBody) Read(p []byte) (int, error) {
	if rem := b.limit - b.n; int64(len(p)) > rem+1 {
		p = p[:rem+1] // read one byte past the limit to detect overflow
	}
	n, err := b.rc.Read(p)
	b.n += int64(n)
	if b.n > b.limit {
		b.rc.Close() // unread bytes remain: net/http closes the connection
		b.a.finish()
		return n - int(b.n-b.limit), fmt.Errorf("%w (%d bytes)", ErrResponseTooLarge, b.limit)
	}
	switch {
	case err == io.EOF:
		b.a.finish()
	case err != nil:
		err = b.a.c.closedErr(err)
	}
	return n, err
}

func (b *respBody) Close() error {
	err := b.rc.Close()
	b.a.finish()
	return err
}
