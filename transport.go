package warmpool

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// roundTripper is the http.RoundTripper under Do, PostJSON and HTTPClient. Per
// call it runs the attempts the retry policy allows; per attempt it adds the
// bearer token, bounds the attempt by request_timeout and the wait for a
// connection by pool_timeout, caps the response body at max_response_bytes,
// and accounts which connection served the request.
type roundTripper struct {
	c    *Client
	next http.RoundTripper // the *http.Transport, or middleware wrapping it (WithTransportMiddleware)
}

// timeoutError is the cause of a request_timeout expiry. It matches
// context.DeadlineExceeded under errors.Is, like any deadline.
type timeoutError struct{ d time.Duration }

func (e *timeoutError) Error() string {
	return fmt.Sprintf("warmpool: request_timeout (%s) exceeded", e.d)
}
func (e *timeoutError) Is(target error) bool { return target == context.DeadlineExceeded }
func (e *timeoutError) Timeout() bool        { return true }

// closedError is the error of a call that Close or Shutdown cut short: it
// matches ErrClosed and unwraps to what the call saw.
type closedError struct{ cause error }

func (e *closedError) Error() string {
	return "warmpool: client closed during the call: " + e.cause.Error()
}
func (e *closedError) Unwrap() error        { return e.cause }
func (e *closedError) Is(target error) bool { return target == ErrClosed }

// closedErr makes err match ErrClosed when the client is closing.
func (c *Client) closedErr(err error) error {
	if err == nil || !c.closing.Load() || errors.Is(err, ErrClosed) {
		return err
	}
	return &closedError{err}
}

func (rt *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	c := rt.c
	if !c.begin() {
		closeReqBody(req)
		return nil, ErrClosed
	}
	c.calls.Add(1)
	resp, err := rt.call(req)
	if err != nil {
		// The RoundTripper contract: the body is closed on every path.
		closeReqBody(req)
		c.callsFailed.Add(1)
		c.end()
		return nil, c.closedErr(err)
	}
	if b, ok := resp.Body.(*respBody); ok {
		// The body's end ends the call. No one has read the body yet, so
		// finish (which runs once) cannot have run before this.
		b.a.ownsClient.Store(true)
		return resp, nil
	}
	c.end()
	return resp, nil
}

// call runs the attempts of one call, as the retry policy (retrier)
// allows.
func (rt *roundTripper) call(req *http.Request) (*http.Response, error) {
	c := rt.c
	c.budget.deposit(c.now()) // the requests the retry budget and the hedge cap share
	r := newRetrier(c, req)
	var prev *endpoint // of the last attempt: a retry prefers another
	for n := 1; ; n++ {
		areq, err := rewind(req, n)
		if err != nil {
			return nil, err
		}
		resp, injected, ep, err := rt.attempt(areq, prev)
		prev = ep
		wait, stop := r.next(n, resp, err, injected, ep)
		if stop {
			return r.result(n, resp, err)
		}
		if err := c.sleepCtx(req.Context(), wait); err != nil {
			return nil, &RetryError{Attempts: n, LastStatus: r.lastStatus, Err: err}
		}
	}
}

// rewind returns the request for attempt n: req itself first, then a
// shallow copy with a fresh body from GetBody.
func rewind(req *http.Request, n int) (*http.Request, error) {
	if n == 1 || req.Body == nil || req.Body == http.NoBody {
		return req, nil
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, fmt.Errorf("warmpool: rewinding request body for a retry: %w", err)
	}
	r := *req
	r.Body = body
	return &r, nil
}

// attempt runs one attempt of req, avoiding endpoint prev when another will
// do, hedged when req may be: it returns the answer, whether the client's
// token went with it, and the endpoint that answered (nil: the client's own
// transport).
func (rt *roundTripper) attempt(req *http.Request, prev *endpoint) (*http.Response, bool, *endpoint, error) {
	c := rt.c
	p, ep := c.routes.target(req, dialAddr(req.URL), prev)
	if c.hedgeable(req) {
		if d := c.hedge.after(c.routes.pools(req, p), c.now()); d > 0 {
			return c.hedge.race(rt, req, p, ep, d)
		}
	}
	resp, injected, err := rt.send(req, p, ep, nil)
	return resp, injected, ep, err
}

// send sends req once to p, through ep's transport (nil: the client's own).
// injected reports whether it added the token. cancelParent, if not nil,
// cancels req's context: it is called as the attempt ends.
func (rt *roundTripper) send(req *http.Request, p *pool, ep *endpoint, cancelParent context.CancelFunc) (resp *http.Response, injected bool, err error) {
	c := rt.c
	if !p.tracked.Load() {
		p.tracked.Store(true)
	}
	a := &attempt{c: c, p: p, caller: req.Context(), req: req, start: c.now(), cancelParent: cancelParent}
	// request_timeout bounds the whole attempt: the token, the wait for a
	// connection, the exchange and the body.
	a.want.Context, a.cancel = context.WithTimeoutCause(req.Context(), c.cfg.RequestTimeout, c.timeoutErr)
	hdr, injected, err := c.attemptHeader(&a.want, req)
	if err == nil {
		a.probe, err = p.acquire(&a.want)
	}
	if err != nil {
		a.cancel()
		if cancelParent != nil {
			cancelParent()
		}
		err = a.explain(err)
		p.refuse(err)
		a.done(err)
		return nil, injected, err
	}
	if c.deadlineHeader != "" {
		hdr = withDeadline(hdr, c.deadlineHeader, &a.want, a.start)
	}
	a.trace.GotConn = a.gotConn
	a.trace.GetConn = a.getConn
	a.req = req.WithContext(httptrace.WithClientTrace(&a.want, &a.trace)) // the want answers wantKey, for the gate
	a.req.Header = hdr

	next := rt.next
	if ep != nil {
		next = ep.rt
	}
	resp, err = next.RoundTrip(a.req)
	if err != nil {
		a.err = a.explain(err)
		a.finish()
		return nil, injected, a.err
	}
	a.status = resp.StatusCode
	p.learnFromHeader(resp.Header)
	if resp.Close && a.conn != nil {
		a.conn.announced.Store(true) // its close is no idle timeout
	}
	limit := c.cfg.MaxResponseBytes
	if resp.ContentLength > limit {
		resp.Body.Close() // closes the connection: never drain without bound
		a.err = fmt.Errorf("%w (Content-Length %d > %d)", ErrResponseTooLarge, resp.ContentLength, limit)
		a.finish()
		return nil, injected, a.err
	}
	a.body = respBody{rc: resp.Body, limit: limit, a: a}
	resp.Body = &a.body
	return resp, injected, nil
}

// withDeadline returns a copy of hdr (which may be the caller's own) with
// the attempt's remaining time (ctx's deadline: the caller's, or
// request_timeout's if sooner) in header name: whole milliseconds, as
// Envoy's x-envoy-expected-rq-timeout-ms, or gRPC's format for
// grpc-timeout.
func withDeadline(hdr http.Header, name string, ctx context.Context, now time.Time) http.Header {
	dl, ok := ctx.Deadline()
	if !ok {
		return hdr
	}
	v := strconv.FormatInt(max(dl.Sub(now).Milliseconds(), 0), 10)
	if strings.EqualFold(name, "grpc-timeout") {
		v += "m"
	}
	out := make(http.Header, len(hdr)+1)
	for k, vv := range hdr {
		out[k] = vv
	}
	out.Set(name, v)
	return out
}

// dialAddr is the address net/http dials for u: its host and port, the
// port being the scheme's default when u has none.
func dialAddr(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	return u.Host + ":" + portOrDefault(u)
}

func closeReqBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
