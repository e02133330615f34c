package warmpool

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/warmpool/warmpool/internal/wait"
)

// RetryError is returned when a request failed after more than one attempt,
// or when the retry budget refused a retry. It keeps the count, the status
// of the last attempt that got a response, and unwraps to the last cause, so
// errors.Is(err, context.DeadlineExceeded) and the like keep working.
type RetryError struct {
	Attempts      int
	LastStatus    int  // 0 if no attempt got a response
	BudgetRefused bool // the retry budget stopped further attempts
	Err           error
}

func (e *RetryError) Error() string {
	msg := fmt.Sprintf("warmpool: giving up after %d attempts", e.Attempts)
	if e.BudgetRefused {
		msg += " (retry budget exhausted)"
	}
	if e.LastStatus != 0 {
		msg += fmt.Sprintf(", last status %d", e.LastStatus)
	}
	return msg + ": " + strings.TrimPrefix(e.Err.Error(), "warmpool: ")
}

func (e *RetryError) Unwrap() error { return e.Err }

// retrier decides, attempt after attempt, whether a call goes on: the one
// place that holds the retry decision. The policy (which outcomes may be
// retried) is classify's; the rest is here: one token renewal after a 401,
// the Retry-After cap, the caller's deadline and the retry budget.
type retrier struct {
	c          *Client
	req        *http.Request
	canRetry   bool // retries are on and the body can be replayed
	idempotent bool
	refreshed  bool // the token was renewed once after a 401
	refused    bool // the budget refused the last retry
	lastStatus int  // of the last attempt that got a response and was retried
	failure    error
}

// newRetrier returns the retrier of a call of req, as a value, so that it
// stays on the caller's stack.
func newRetrier(c *Client, req *http.Request) retrier {
	return retrier{c: c, req: req, canRetry: c.cfg.MaxRetries > 0 && replayable(req), idempotent: isIdempotent(req)}
}

// next decides after attempt n, which ended with resp or err, whether
// another follows and after what wait. injected reports that the attempt
// carried the client's token. When it goes on, next has discarded resp and
// called Hooks.Retry; when it stops, result gives the call's outcome.
// ep is the endpoint the attempt went to (nil: the client's own transport).
func (r *retrier) next(n int, resp *http.Response, err error, injected bool, ep *endpoint) (wait time.Duration, stop bool) {
	c := r.c
	if err == nil && resp.StatusCode == http.StatusUnauthorized && injected && !r.refreshed && replayable(r.req) && !c.closing.Load() {
		// A 401 to a token we added: renew it once and try again at once.
		r.refreshed = true
		c.tokens.forURL(r.req.URL).cache.Invalidate()
		discard(resp)
		return 0, false
	}
	class := classify(resp, err)
	if class == retryElsewhere && (ep == nil || !ep.set.hasOther(ep, c.now())) {
		class = noRetry // never onto the endpoint that refused it
	}
	if !r.canRetry || n > c.cfg.MaxRetries || r.req.Context().Err() != nil || c.closing.Load() ||
		!(class == retryAlways || class == retryElsewhere || class == retryIdempot && r.idempotent) {
		return 0, true
	}
	if class != retryElsewhere { // nothing was sent, and another endpoint takes it: no wait
		wait = backoff(n, c.cfg.RetryBackoffFactor, c.cfg.RetryMaxBackoff, c.rand)
	}
	if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		if ra, ok := parseRetryAfter(resp.Header.Get("Retry-After"), c.now()); ok {
			if ra > c.cfg.RetryMaxBackoff {
				// Retrying sooner than asked is rude, waiting longer
				// than retry_max_backoff is not allowed: stop here.
				return 0, true
			}
			wait = ra
		}
	}
	if dl, ok := r.req.Context().Deadline(); ok && dl.Sub(c.now()) < wait {
		// The wait would outlive the caller: end now with the deadline
		// error rather than sleep into it.
		r.noteStatus(resp)
		r.failure = &RetryError{Attempts: n, LastStatus: r.lastStatus,
			Err: fmt.Errorf("next attempt due in %s, after the context deadline: %w", wait.Round(time.Millisecond), context.DeadlineExceeded)}
		return 0, true
	}
	if !c.budget.withdraw(c.now()) {
		r.refused = true
		return 0, true
	}
	r.noteStatus(resp)
	if h := c.hooks.Retry; h != nil {
		h(RetryInfo{Host: dialAddr(r.req.URL), Attempt: n, Wait: wait, StatusCode: statusOf(resp), Err: err})
	}
	return wait, false
}

// noteStatus keeps resp's status as the last one and discards resp.
func (r *retrier) noteStatus(resp *http.Response) {
	if resp != nil {
		r.lastStatus = resp.StatusCode
		discard(resp)
	}
}

// result is the outcome of a call whose last attempt, the n-th, ended with
// resp or err.
func (r *retrier) result(n int, resp *http.Response, err error) (*http.Response, error) {
	switch {
	case r.failure != nil:
		return nil, r.failure
	case err == nil:
		if b, ok := resp.Body.(*respBody); ok {
			b.a.attempts = n
		}
		return resp, nil
	case n > 1 || r.refused:
		return nil, &RetryError{Attempts: n, LastStatus: r.lastStatus, BudgetRefused: r.refused, Err: err}
	}
	return nil, err
}

func statusOf(resp *http.Response) int {
	if resp == nil {
		return 0
	}
	return resp.StatusCode
}

// retryClass says whether and why a failed attempt may be retried.
type retryClass int

const (
	noRetry        retryClass = iota
	retryAlways               // the request provably did not run: any method
	retryIdempot              // it may have run: idempotent requests only
	retryElsewhere            // not sent: the endpoint is overloaded or its circuit open; another endpoint may take it
)

// classify decides whether an attempt's outcome may be retried, from the
// answer's status or from the error's ErrorKind.
func classify(resp *http.Response, err error) retryClass {
	if err == nil {
		switch resp.StatusCode {
		case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusServiceUnavailable:
			return retryAlways // the server says it did not process the request
		case http.StatusBadGateway, http.StatusGatewayTimeout:
			return retryIdempot // a proxy may have forwarded it
		}
		return noRetry
	}
	if _, ok := errors.AsType[*deadlineError](err); ok {
		return noRetry // too little time left for any attempt
	}
	switch ErrorKind(err) {
	case "overloaded", "circuit_open":
		return retryElsewhere
	case "closed", "pool_timeout", "too_large", "insecure_token", "canceled", "certificate", "token":
		// Settings, the caller, or faults a retry cannot mend (the token
		// cache shares and backs off failed fetches by itself).
		return noRetry
	}
	if isDialError(err) {
		return retryAlways // nothing was sent
	}
	return retryIdempot // reset, EOF or timeout after the request may have been sent
}

// isDialError reports a failure to connect, before any byte of the request
// was sent: refused, DNS, a TLS handshake failure, or any other error of the
// dial, such as a connect timeout (certificate errors too: classify refuses
// those first).
func isDialError(err error) bool {
	switch ErrorKind(err) {
	case "refused", "dns", "tls":
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// Errors net/http returns that have no exported type or sentinel.
const (
	stdTLSHandshakeTimeout = "net/http: TLS handshake timeout"
	stdServerClosedIdle    = "http: server closed idle connection" // the server closed a pooled connection as it was picked
)

// isStdError matches one of net/http's unexported errors by its text: this
// is the one place that compares error strings, because the standard
// library forces it.
func isStdError(err error, text string) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if e.Error() == text {
			return true
		}
	}
	return false
}

func isTLSHandshakeTimeout(err error) bool { return isStdError(err, stdTLSHandshakeTimeout) }

// isIdempotent reports whether repeating req is safe: by method, or because
// it carries an Idempotency-Key the server deduplicates on.
func isIdempotent(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete, http.MethodTrace:
		return true
	}
	return req.Header.Get("Idempotency-Key") != "" || req.Header.Get("X-Idempotency-Key") != ""
}

// replayable reports whether req's body can be sent again.
func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// backoff is the wait before retry n (1-based): full jitter over
// factor × 2^(n-1) seconds, capped at max. It is never negative.
func backoff(n int, factor float64, max time.Duration, rnd func() float64) time.Duration {
	if n < 1 || factor <= 0 || max <= 0 || math.IsNaN(factor) {
		return 0
	}
	ceil := factor * math.Exp2(float64(n-1)) * float64(time.Second)
	if math.IsInf(ceil, 0) || ceil > float64(max) {
		ceil = float64(max)
	}
	return time.Duration(rnd() * ceil)
}

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP-date.
// ok is false for a missing or malformed value; a date in the past is 0.
func parseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) && v[0] != '-' {
		if secs < 0 {
			return 0, false
		}
		if err != nil || secs > int64(math.MaxInt64/time.Second) {
			return time.Duration(math.MaxInt64), true // more seconds than a Duration holds
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// budget limits retries (and hedges) to a share of recent requests plus a
// floor per second, over the last budgetWindow seconds, in the manner of
// Finagle's RetryBudget. It is lock-free: a deposit is one atomic add on the
// request path.
type budget struct {
	percent   float64
	perSecond float64
	start     time.Time
	win       window // requests (a) and what was spent on top of them (b)
	refused   atomic.Int64
	retries   atomic.Int64
}

const budgetWindow = 10

// deposit records a request.
func (b *budget) deposit(now time.Time) { b.win.add(now, 1, 0) }

// requests is how many requests were deposited over the window.
func (b *budget) requests(now time.Time) int64 {
	reqs, _ := b.win.sums(now, budgetWindow)
	return reqs
}

// withdraw reports whether a retry may go ahead now, and records it if so.
func (b *budget) withdraw(now time.Time) bool {
	if !b.take(now) {
		b.refused.Add(1)
		return false
	}
	b.retries.Add(1)
	return true
}

// take reports whether the budget has room for one more request beyond the
// first attempts (a retry or a hedge), and spends it if so.
func (b *budget) take(now time.Time) bool {
	reqs, spent := b.win.sums(now, budgetWindow)
	// The floor accrues from the client's start, up to the window.
	secs := min(now.Sub(b.start).Seconds()+1, budgetWindow)
	allowed := b.percent/100*float64(reqs) + b.perSecond*secs
	if float64(spent+1) > allowed {
		return false
	}
	b.win.add(now, 0, 1)
	return true
}

// sleepCtx waits d, or less if ctx ends or the client closes.
func (c *Client) sleepCtx(ctx context.Context, d time.Duration) error {
	if err := wait.Sleep(ctx, d, c.done); err != wait.ErrDone {
		return err
	}
	return ErrClosed
}

// discard drains (bounded) and closes a response the caller will not see,
// keeping its connection when the body is short.
func discard(resp *http.Response) { drainAndClose(resp.Body) }

func jitter() float64 { return rand.Float64() }
