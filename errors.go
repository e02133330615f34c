package warmpool

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ErrClosed is returned for requests made after Close or Shutdown began.
var ErrClosed = errors.New("warmpool: client closed")

// ErrPoolTimeout is returned when a request waited pool_timeout for a free
// connection because all max_connections to its host were busy. Plain
// net/http would wait without bound; warmpool fails fast so callers can shed
// load. Test for it with errors.Is.
var ErrPoolTimeout = errors.New("warmpool: timed out waiting for a free connection")

// ErrOverloaded is matched (errors.Is) by the error of a call that was not
// sent because its endpoint is past the capacity warmpool measured for it:
// the concurrency limit (concurrency_limit) was reached and no slot came free
// within limit_queue_timeout, or client-side throttling rejected it while
// the backend refused most requests. Nothing was sent; the call is never
// retried onto the same endpoint. The error is an *OverloadError.
var ErrOverloaded = errors.New("warmpool: overloaded")

// ErrCircuitOpen is matched (errors.Is) by the error of a call that failed at
// once, not sent, because its endpoint's circuit breaker is open: it failed
// circuit_breaker_failures times in a row in a way that says it is down.
// The error is a *CircuitOpenError naming the host and the last cause.
var ErrCircuitOpen = errors.New("warmpool: circuit open")

// ErrResponseTooLarge is returned when a response body exceeds
// max_response_bytes. The connection it arrived on is closed, never drained.
var ErrResponseTooLarge = errors.New("warmpool: response body exceeds max_response_bytes")

// maxErrorBody caps the body excerpt kept in a StatusError.
const maxErrorBody = 4 << 10

// StatusError reports a response whose status was not 2xx. Body holds at most
// 4 KiB of the response body, with any bearer token redacted, so it is safe to
// log.
type StatusError struct {
	StatusCode int
	Method     string
	URL        string // without query string or user info
	Body       []byte
	Attempts   int // attempts made, counting retries (1 without retries)
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("warmpool: %s %s: status %d %s", e.Method, e.URL, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Attempts > 1 {
		msg += fmt.Sprintf(" after %d attempts", e.Attempts)
	}
	if len(e.Body) > 0 {
		msg += ": " + strconv.Quote(excerpt(e.Body, 200))
	}
	return msg
}

// ContentTypeError reports a 2xx response whose body is not JSON where JSON
// was expected (PostJSON).
type ContentTypeError struct {
	StatusCode  int
	ContentType string
	URL         string
	Body        []byte // first bytes of the body, capped and redacted
}

func (e *ContentTypeError) Error() string {
	ct := e.ContentType
	if ct == "" {
		ct = "none"
	}
	return fmt.Sprintf("warmpool: %s: status %d with content type %q, want application/json", e.URL, e.StatusCode, ct)
}

func excerpt(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "…"
}

// TokenError reports that the bearer token for a request could not be had:
// the token source failed, or did not answer within the request's
// request_timeout or context. It names the source, never the token.
type TokenError struct {
	Source string // the token source, by type, such as "*warmpool.fileToken"
	Err    error  // the cause: the source's error, or a deadline
}

func (e *TokenError) Error() string {
	return "warmpool: fetching bearer token from " + e.Source + ": " + strings.TrimPrefix(e.Err.Error(), "warmpool: ")
}

func (e *TokenError) Unwrap() error { return e.Err }

// IdleCloseError reports a request that failed because the server closed the
// pooled connection it was sent on: the connection had been idle, the server
// timed it out as the request went out, and the request could not be
// replayed safely. Err is what net/http saw (EOF or a reset).
//
// The cure is to keep connections idle for less than the server does: set
// keepalive_expiry below the server's idle timeout (warmpool learns it by
// itself after the first such close, see HostStats.LearnedIdleTimeout), or
// make the call retryable with an Idempotency-Key (WithIdempotencyKeys).
type IdleCloseError struct {
	Method string
	URL    string        // without query string or user info
	Idle   time.Duration // how long the connection had been idle when it was reused
	// Idempotent reports whether the request was safe to repeat: then
	// warmpool's retries ran out; otherwise the request may have reached
	// the server, so it was not retried.
	Idempotent bool
	Err        error // what net/http saw: EOF or a reset
}

func (e *IdleCloseError) Error() string {
	var b strings.Builder
	// No method and URL: the *url.Error that net/http's Client wraps every
	// transport error in names them already.
	fmt.Fprintf(&b, "warmpool: the server closed the pooled connection as the request was sent on it (reused after %s idle)",
		e.Idle.Round(time.Millisecond))
	if e.Idempotent {
		b.WriteString("; retries did not get through")
	} else {
		fmt.Fprintf(&b, "; the request may have reached the server, so it was not retried (%s is not idempotent)", e.Method)
	}
	b.WriteString("; fix: set keepalive_expiry below the server's idle timeout, or send an Idempotency-Key (WithIdempotencyKeys) so the call can be retried")
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

func (e *IdleCloseError) Unwrap() error { return e.Err }

// OverloadError is the error of a call that was not sent because its
// endpoint is past its capacity (it matches ErrOverloaded).
type OverloadError struct {
	Host     string // the endpoint, "host:port"
	Limit    int    // the concurrency limit when the call was refused; 0 when throttled
	InFlight int    // requests in flight to it then
	// Throttled reports a rejection by client-side throttling: the backend
	// accepted only Accepted of the last Requests sent to it (it refused
	// them, failed, or timed out), so this client sends only a share of its
	// calls until it accepts them again.
	Throttled          bool
	Requests, Accepted int64
	Waited             time.Duration // time spent queued for a slot (limit_queue_timeout)
}

func (e *OverloadError) Error() string {
	if e.Throttled {
		return fmt.Sprintf("warmpool: %s is failing most requests: it accepted %d of the last %d, so this call was not sent (client-side throttling); "+
			"fix: find why the backend refuses or fails requests; calls go through again as it accepts them", e.Host, e.Accepted, e.Requests)
	}
	msg := fmt.Sprintf("warmpool: %s is overloaded: %d requests in flight at its concurrency limit of %d", e.Host, e.InFlight, e.Limit)
	if e.Waited > 0 {
		msg += fmt.Sprintf(", none ended within limit_queue_timeout (%s)", e.Waited.Round(time.Millisecond))
	}
	return msg + "; the call was not sent; fix: give the backend capacity, lower the load, or raise limit_queue_timeout to wait for a slot"
}

// Is makes the error match ErrOverloaded.
func (e *OverloadError) Is(target error) bool { return target == ErrOverloaded }

// CircuitOpenError is the error of a call that failed at once because its
// endpoint's circuit breaker is open (it matches ErrCircuitOpen).
type CircuitOpenError struct {
	Host     string        // the endpoint, "host:port"
	Failures int           // the failures in a row that opened it
	Cause    error         // the last of them (not wrapped: the call itself did not meet it)
	RetryIn  time.Duration // until the next probe may go
}

func (e *CircuitOpenError) Error() string {
	msg := fmt.Sprintf("warmpool: circuit open for %s after %d failures in a row", e.Host, e.Failures)
	if e.Cause != nil {
		msg += " (the last: " + strings.TrimPrefix(e.Cause.Error(), "warmpool: ") + ")"
	}
	return msg + fmt.Sprintf("; the call was not sent; one call probes it in %s; "+
		"fix: find why the backend is down; circuit_breaker_failures and circuit_breaker_open_for tune this", e.RetryIn.Round(time.Millisecond))
}

// Is makes the error match ErrCircuitOpen.
func (e *CircuitOpenError) Is(target error) bool { return target == ErrCircuitOpen }

// statusCause is the cause a breaker keeps for an answer that opened it.
func statusCause(status int) error {
	return fmt.Errorf("status %d %s", status, http.StatusText(status))
}

// deadlineError is the error of a call not sent because its context had
// less time left than the endpoint's fastest recent answer took. It matches
// context.DeadlineExceeded.
type deadlineError struct {
	host      string
	left, min time.Duration
}

func (e *deadlineError) Error() string {
	return fmt.Sprintf("warmpool: %s left before the context deadline, less than the fastest recent answer of %s (%s): not sent: %s",
		e.left.Round(time.Microsecond), e.host, e.min.Round(time.Microsecond), context.DeadlineExceeded)
}
func (e *deadlineError) Is(target error) bool { return target == context.DeadlineExceeded }
func (e *deadlineError) Timeout() bool        { return true }
