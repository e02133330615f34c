package warmpool

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
	"time"
)

// roundTripper is the http.RoundTripper under Do, PostJSON and HTTPClient. Per
// request it adds the bearer token, bounds the attempt by request_timeout and
// the wait for a connection by pool_timeout, caps the response body at
// max_response_bytes, and accounts which connection served the request.
type roundTripper struct {
	c  *Client
	tr *http.Transport
}

// timeoutError is the cause of a request_timeout expiry. It matches
// context.DeadlineExceeded under errors.Is, like any deadline.
type timeoutError struct{ d time.Duration }

func (e *timeoutError) Error() string {
	return fmt.Sprintf("warmpool: request_timeout (%s) exceeded", e.d)
}
func (e *timeoutError) Is(target error) bool { return target == context.DeadlineExceeded }
func (e *timeoutError) Timeout() bool        { return true }

func (rt *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	c := rt.c
	if !c.begin() {
		closeReqBody(req)
		return nil, ErrClosed
	}
	c.budget.deposit(time.Now())
	canRetry := c.cfg.MaxRetries > 0 && replayable(req)
	idempotent := isIdempotent(req)
	ctx := req.Context()
	var (
		lastStatus int
		refreshed  bool // the token was renewed once after a 401
	)
	for attempt := 1; ; attempt++ {
		areq, err := rewind(req, attempt)
		if err != nil {
			c.end()
			return nil, err
		}
		resp, injected, err := rt.attempt(areq)

		// A 401 to a token we added: renew it once and try again.
		if err == nil && resp.StatusCode == http.StatusUnauthorized && injected && !refreshed && replayable(req) {
			refreshed = true
			c.tokens.forURL(req.URL).cache.Invalidate()
			drainForRetry(resp)
			continue
		}

		class := classify(resp, err)
		retry := canRetry && attempt <= c.cfg.MaxRetries && ctx.Err() == nil &&
			(class == retryAlways || class == retryIdempot && idempotent)
		if !retry {
			return c.finish(resp, err, attempt, lastStatus, false)
		}
		wait := backoff(attempt, c.cfg.RetryBackoffFactor, c.cfg.RetryMaxBackoff, c.rand)
		if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
			if ra, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
				if ra > c.cfg.RetryMaxBackoff {
					// Retrying sooner than asked is rude, waiting longer
					// than retry_max_backoff is not allowed: stop here.
					return c.finish(resp, err, attempt, lastStatus, false)
				}
				wait = ra
			}
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			// The wait would outlive the caller: end now with the
			// deadline error rather than sleep into it.
			if resp != nil {
				lastStatus = resp.StatusCode
				drainForRetry(resp)
			}
			c.end()
			return nil, &RetryError{Attempts: attempt, LastStatus: lastStatus,
				Err: fmt.Errorf("next attempt due in %s, after the context deadline: %w", wait.Round(time.Millisecond), context.DeadlineExceeded)}
		}
		if !c.budget.withdraw(time.Now()) {
			return c.finish(resp, err, attempt, lastStatus, true)
		}
		if resp != nil {
			lastStatus = resp.StatusCode
			drainForRetry(resp)
		}
		if h := c.hooks.Retry; h != nil {
			h(RetryInfo{Host: hostKey(req), Attempt: attempt, Wait: wait, StatusCode: statusOf(resp), Err: err})
		}
		if err := c.sleepCtx(ctx, wait); err != nil {
			c.end()
			return nil, &RetryError{Attempts: attempt, LastStatus: lastStatus, Err: err}
		}
	}
}

// finish hands the outcome of the last attempt to the caller. A response
// keeps the client's in-flight count until its body is done.
func (c *Client) finish(resp *http.Response, err error, attempts, lastStatus int, refused bool) (*http.Response, error) {
	if err == nil {
		if st, ok := resp.Body.(*reqState); ok {
			st.attempts = attempts
			st.ownsClient = true
			return resp, nil
		}
		c.end()
		return resp, nil
	}
	c.end()
	if attempts > 1 || refused {
		return nil, &RetryError{Attempts: attempts, LastStatus: lastStatus, BudgetRefused: refused, Err: err}
	}
	return nil, err
}

func statusOf(resp *http.Response) int {
	if resp == nil {
		return 0
	}
	return resp.StatusCode
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

// attempt sends req once. injected reports whether it added the token.
func (rt *roundTripper) attempt(req *http.Request) (resp *http.Response, injected bool, err error) {
	c := rt.c
	h := c.dialer.host(hostKey(req))
	if !h.tracked.Load() {
		h.tracked.Store(true)
	}
	st := &reqState{c: c, host: h, limit: c.cfg.MaxResponseBytes}
	if c.hooks.RequestDone != nil {
		st.start = time.Now()
	}
	if err := st.acquire(req); err != nil {
		if f := c.hooks.RequestDone; f != nil {
			f(RequestInfo{Host: h.addr, Method: req.Method, Duration: time.Since(st.start), Err: err})
		}
		return nil, false, err
	}
	h.notePeak(h.inflight.Add(1))

	ctx := req.Context()
	ctx, st.cancel = context.WithTimeoutCause(ctx, c.cfg.RequestTimeout, c.timeoutErr)
	st.trace.GotConn = st.gotConn
	st.trace.GetConn = st.getConn
	ctx = httptrace.WithClientTrace(ctx, &st.trace)

	r2 := req.WithContext(ctx)
	st.req = r2
	// The token goes on original requests and same-origin redirects; a
	// redirect off the original origin loses any Authorization.
	r2.Header, injected, err = c.attemptHeader(req)
	if err != nil {
		st.err = err
		st.finish()
		closeReqBody(req)
		return nil, false, err
	}

	resp, err = rt.tr.RoundTrip(r2)
	if err != nil {
		err = st.explain(ctx, req, err)
		st.err = err
		st.finish()
		return nil, injected, err
	}
	st.status = resp.StatusCode
	if resp.ContentLength > st.limit {
		resp.Body.Close() // closes the connection: never drain without bound
		st.finish()
		return nil, injected, fmt.Errorf("%w (Content-Length %d > %d)", ErrResponseTooLarge, resp.ContentLength, st.limit)
	}
	st.body = resp.Body
	resp.Body = st
	return resp, injected, nil
}

// explain turns a context error caused by warmpool's own timer into the
// error a caller can branch on.
func (st *reqState) explain(ctx context.Context, req *http.Request, err error) error {
	if req.Context().Err() != nil {
		return err // the caller's context ended: their error, untouched
	}
	if cause := context.Cause(ctx); cause == st.c.timeoutErr {
		return cause
	}
	return err
}

// reqState follows one request from RoundTrip until its body is done. It is
// also the response body handed to the caller.
type reqState struct {
	c     *Client
	host  *hostPool
	conn  *conn
	trace httptrace.ClientTrace

	cancel context.CancelFunc
	slot   bool      // holds one of the host's request slots
	reused bool      // the connection had served a request before
	start  time.Time // set only when Hooks.RequestDone is
	status int
	err    error

	req        *http.Request // the attempt as sent
	body       io.ReadCloser
	n          int64
	limit      int64
	attempts   int  // set on the response handed to the caller
	ownsClient bool // finish ends the client's in-flight count
	done       atomic.Bool
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
}

func (st *reqState) gotConn(info httptrace.GotConnInfo) {
	reused := info.Reused
	if c := asConn(info.Conn); c != nil && st.conn == nil {
		c.inUse.Add(1)
		st.host.holding.Add(1)
		st.conn = c
		// net/http calls a connection reused once it has been in the idle
		// pool, even if no request ran on it yet: count served ones only.
		reused = c.served.Swap(true)
		if c.retireAt != 0 && st.c.now().UnixNano() >= c.retireAt && st.req != nil {
			// Past max_connection_age: this request is its last. For
			// requests net/http does not copy (no body) this sends
			// Connection: close; for the rest, finish closes it.
			st.req.Close = true
			c.retiring.Store(true)
		}
	}
	st.reused = reused
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
	if err == io.EOF {
		st.finish()
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
	if c.inUse.Add(-1) == 0 {
		c.idleSince.Store(time.Now().UnixNano())
		c.retireIfAged(st.c.now())
	}
	st.host.holding.Add(-1)
}

// finish releases everything the request held; it runs once.
func (st *reqState) finish() {
	if !st.done.CompareAndSwap(false, true) {
		return
	}
	st.cancel()
	if c := st.conn; c != nil {
		// Counted here, on the connection that served the request in the
		// end, not on one net/http gave it first and then replaced.
		st.host.requests.Add(1) // before reused, so a snapshot never shows more reused than requests
		if st.reused {
			st.host.reused.Add(1)
			if f := st.c.hooks.ConnReused; f != nil {
				f(c.info())
			}
		}
		st.release(c)
	}
	st.host.inflight.Add(-1)
	st.releaseSlot()
	if f := st.c.hooks.RequestDone; f != nil {
		f(RequestInfo{Host: st.host.addr, Method: st.req.Method, StatusCode: st.status, Duration: time.Since(st.start), Err: st.err})
	}
	if st.ownsClient {
		st.c.end()
	}
}

// hostKey is the dialed address for req, as net/http passes it to the dialer.
func hostKey(req *http.Request) string {
	u := req.URL
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return u.Host + ":443"
	}
	return u.Host + ":80"
}

// cloneHeaderWith copies h (sharing value slices, which net/http only reads)
// and sets key to v.
func cloneHeaderWith(h http.Header, key string, v []string) http.Header {
	h2 := make(http.Header, len(h)+1)
	for k, vv := range h {
		h2[k] = vv
	}
	h2[key] = v
	return h2
}

func closeReqBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
