package warmpool

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptrace"
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
	if st, ok := resp.Body.(*reqState); ok {
		// The body's end ends the call. No one has read the body yet, so
		// finish (which runs once) cannot have run before this.
		st.ownsClient.Store(true)
		return resp, nil
	}
	c.end()
	return resp, nil
}

// call runs the attempts of one call, as the retry policy allows.
func (rt *roundTripper) call(req *http.Request) (*http.Response, error) {
	c := rt.c
	c.budget.deposit(c.now())
	canRetry := c.cfg.MaxRetries > 0 && replayable(req)
	idempotent := isIdempotent(req)
	ctx := req.Context()
	var (
		lastStatus int
		refreshed  bool      // the token was renewed once after a 401
		prev       *endpoint // of the last attempt: a retry prefers another
	)
	for attempt := 1; ; attempt++ {
		areq, err := rewind(req, attempt)
		if err != nil {
			return nil, err
		}
		resp, injected, ep, err := rt.attempt(areq, prev)
		prev = ep

		// A 401 to a token we added: renew it once and try again.
		if err == nil && resp.StatusCode == http.StatusUnauthorized && injected && !refreshed && replayable(req) && !c.closing.Load() {
			refreshed = true
			c.tokens.forURL(req.URL).cache.Invalidate()
			drainForRetry(resp)
			continue
		}

		class := classify(resp, err)
		retry := canRetry && attempt <= c.cfg.MaxRetries && ctx.Err() == nil && !c.closing.Load() &&
			(class == retryAlways || class == retryIdempot && idempotent)
		if !retry {
			return finish(resp, err, attempt, lastStatus, false)
		}
		wait := backoff(attempt, c.cfg.RetryBackoffFactor, c.cfg.RetryMaxBackoff, c.rand)
		if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
			if ra, ok := parseRetryAfter(resp.Header.Get("Retry-After"), c.now()); ok {
				if ra > c.cfg.RetryMaxBackoff {
					// Retrying sooner than asked is rude, waiting longer
					// than retry_max_backoff is not allowed: stop here.
					return finish(resp, err, attempt, lastStatus, false)
				}
				wait = ra
			}
		}
		if dl, ok := ctx.Deadline(); ok && dl.Sub(c.now()) < wait {
			// The wait would outlive the caller: end now with the
			// deadline error rather than sleep into it.
			if resp != nil {
				lastStatus = resp.StatusCode
				drainForRetry(resp)
			}
			return nil, &RetryError{Attempts: attempt, LastStatus: lastStatus,
				Err: fmt.Errorf("next attempt due in %s, after the context deadline: %w", wait.Round(time.Millisecond), context.DeadlineExceeded)}
		}
		if !c.budget.withdraw(c.now()) {
			return finish(resp, err, attempt, lastStatus, true)
		}
		if resp != nil {
			lastStatus = resp.StatusCode
			drainForRetry(resp)
		}
		if h := c.hooks.Retry; h != nil {
			h(RetryInfo{Host: hostKey(req), Attempt: attempt, Wait: wait, StatusCode: statusOf(resp), Err: err})
		}
		if err := c.sleepCtx(ctx, wait); err != nil {
			return nil, &RetryError{Attempts: attempt, LastStatus: lastStatus, Err: err}
		}
	}
}

// finish hands the outcome of a call's last attempt to the caller.
func finish(resp *http.Response, err error, attempts, lastStatus int, refused bool) (*http.Response, error) {
	if err == nil {
		if st, ok := resp.Body.(*reqState); ok {
			st.attempts = attempts
		}
		return resp, nil
	}
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

// attempt sends req once, avoiding endpoint prev when another will do.
// injected reports whether it added the token; ep is the endpoint picked,
// nil when the client's own transport sent it.
func (rt *roundTripper) attempt(req *http.Request, prev *endpoint) (resp *http.Response, injected bool, ep *endpoint, err error) {
	c := rt.c
	h, ep := c.routes.target(req, hostKey(req), prev)
	if !h.tracked.Load() {
		h.tracked.Store(true)
	}
	st := &reqState{c: c, host: h, limit: c.cfg.MaxResponseBytes}
	if c.hooks.RequestDone != nil {
		st.start = c.now()
	}
	// request_timeout bounds the whole attempt: the token, the wait for a
	// connection, the exchange and the body.
	ctx, cancel := context.WithTimeoutCause(req.Context(), c.cfg.RequestTimeout, c.timeoutErr)
	st.Context, st.cancel = ctx, cancel
	hdr, injected, err := c.attemptHeader(ctx, req)
	if err != nil {
		cancel()
		err = st.explain(ctx, req, err)
		h.noteFailure(err)
		st.requestDone(req, err)
		return nil, false, ep, err
	}
	if err := st.acquire(ctx); err != nil {
		cancel()
		err = st.explain(ctx, req, err)
		h.noteFailure(err)
		st.requestDone(req, err)
		return nil, injected, ep, err
	}
	h.notePeak(h.inflight.Add(1))

	st.trace.GotConn = st.gotConn
	st.trace.GetConn = st.getConn
	ctx = httptrace.WithClientTrace(st, &st.trace) // st answers stateKey, for the dial gate
	r2 := req.WithContext(ctx)
	r2.Header = hdr
	st.req = r2

	next, sent := rt.next, time.Time{}
	if ep != nil {
		next, sent = ep.rt, c.now()
	}
	resp, err = next.RoundTrip(r2)
	if ep != nil {
		ep.observe(req, resp, err, c.now().Sub(sent))
	}
	if err != nil {
		st.err = st.explain(ctx, req, err)
		st.finish()
		return nil, injected, ep, st.err
	}
	st.status = resp.StatusCode
	if c.dialer.learnIdle {
		h.learnFromHeader(resp.Header)
	}
	if resp.Close && st.conn != nil {
		st.conn.announced.Store(true) // its close is no idle timeout
	}
	if resp.ContentLength > st.limit {
		resp.Body.Close() // closes the connection: never drain without bound
		st.err = fmt.Errorf("%w (Content-Length %d > %d)", ErrResponseTooLarge, resp.ContentLength, st.limit)
		st.finish()
		return nil, injected, ep, st.err
	}
	st.body = resp.Body
	resp.Body = st
	return resp, injected, ep, nil
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

func closeReqBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
