package warmpool

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
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
