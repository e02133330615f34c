// Package httpconv holds the low-cardinality names that warmpool's metric
// exporters, prom and otel, give to requests and pool events, so that both
// say the same thing in the same words: the OpenTelemetry HTTP semantic
// conventions where they have a word, warmpool's own otherwise.
package httpconv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"

	"github.com/warmpool/warmpool"
)

// SplitHost splits a dialed address ("host:port", "[::1]:443") into
// server.address and server.port. ok is false for an address without a
// valid port; host is then the whole address.
func SplitHost(addr string) (host string, port int, ok bool) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0, false
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		return addr, 0, false
	}
	return h, n, true
}

// Method bounds http.request.method to the methods the conventions know,
// mapping others to "_OTHER", so a caller cannot multiply the series.
func Method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	case "":
		return http.MethodGet // net/http's meaning of an empty method
	}
	return "_OTHER"
}

// ErrorType is the error.type of an attempt that ended with status (0 for
// none) and err: "" for a success; the status code for a response of 400 or
// more, which the conventions count as a failure on the client side; else a
// short kind of err, or failing one, its Go type. The kinds are few and
// fixed, so the attribute stays low in cardinality.
func ErrorType(status int, err error) string {
	if err == nil {
		if status >= 400 {
			return strconv.Itoa(status)
		}
		return ""
	}
	switch {
	case errors.Is(err, warmpool.ErrPoolTimeout):
		return "pool_timeout"
	case errors.Is(err, warmpool.ErrResponseTooLarge):
		return "response_too_large"
	case errors.Is(err, warmpool.ErrClosed):
		return "client_closed"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection_refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection_reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection_closed" // the server closed it mid-exchange
	}
	return typeName(err)
}

// isTimeout reports whether err is a net.Error that timed out, as dial and
// I/O deadlines are.
func isTimeout(err error) bool {
	ne, ok := errors.AsType[net.Error](err)
	return ok && ne.Timeout()
}

// typeName is the Go type of err, looking through the wrappers that say
// nothing of the failure: fmt.Errorf's and *url.Error.
func typeName(err error) string {
	for {
		name := fmt.Sprintf("%T", err)
		var next error
		switch name {
		case "*fmt.wrapError", "*url.Error":
			next = errors.Unwrap(err)
		}
		if next == nil {
			return name
		}
		err = next
	}
}

// Count is one named counter of a breakdown.
type Count struct {
	Name string
	N    int64
}

// CloseReasons lists every close reason, zeros included, under the names of
// warmpool.Hooks.ConnClosed. Exporters report them all so that a rate sees
// each series from its first increment.
func CloseReasons(r warmpool.CloseReasons) [8]Count {
	return [...]Count{
		{"idle_expiry", r.IdleExpiry}, {"max_age", r.MaxAge}, {"server", r.Server},
		{"error", r.Error}, {"client", r.Client}, {"trim", r.Trim}, {"other", r.Other},
		{"unused", r.Unused},
	}
}

// DialFailureKinds lists every kind of failed dial, zeros included.
func DialFailureKinds(d warmpool.DialFailures) [5]Count {
	return [...]Count{
		{"refused", d.Refused}, {"timeout", d.Timeout}, {"dns", d.DNS}, {"tls", d.TLS}, {"other", d.Other},
	}
}
