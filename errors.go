package warmpool

import (
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
	fmt.Fprintf(&b, "warmpool: %s %s: the server closed the pooled connection as the request was sent on it (reused after %s idle)",
		e.Method, e.URL, e.Idle.Round(time.Millisecond))
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
