package warmpoolotel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"

	"go.opentelemetry.io/otel/attribute"

	"github.com/warmpool/warmpool"
)

// hostAttrs are the server.address and server.port attributes of a dialed
// address.
type hostAttrs struct {
	address attribute.KeyValue
	port    attribute.KeyValue
	hasPort bool
}

// parseHost splits warmpool's dialed address ("host:port", "[::1]:443")
// into server.address and server.port. An address without a valid port
// keeps its whole text as server.address and has no server.port.
func parseHost(addr string) hostAttrs {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return hostAttrs{address: attribute.String("server.address", addr)}
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return hostAttrs{address: attribute.String("server.address", addr)}
	}
	return hostAttrs{
		address: attribute.String("server.address", host),
		port:    attribute.Int("server.port", p),
		hasPort: true,
	}
}

// method bounds http.request.method to the methods the semantic conventions
// know, mapping others to "_OTHER".
func method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	case "":
		return http.MethodGet // net/http's meaning of an empty method
	}
	return "_OTHER"
}

// errorType is the error.type of an attempt that ended with status (0 for
// none) and err: "" for a success, the status code for a response of 400 or
// more, else a short kind of err. The kinds are few and fixed, and the
// fallback is a Go type name, so the attribute stays low in cardinality.
func errorType(status int, err error) string {
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

// isTimeout reports whether err is a net.Error that timed out, as dial and
// I/O deadlines are.
func isTimeout(err error) bool {
	ne, ok := errors.AsType[net.Error](err)
	return ok && ne.Timeout()
}
