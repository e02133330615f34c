package httpconv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"reflect"
	"syscall"
	"testing"

	"github.com/warmpool/warmpool"
)

func TestSplitHost(t *testing.T) {
	for _, tc := range []struct {
		in   string
		host string
		port int // -1: none
	}{
		{"127.0.0.1:8080", "127.0.0.1", 8080},
		{"api.example.com:443", "api.example.com", 443},
		{"[::1]:80", "::1", 80},
		{"[2001:db8::1]:8443", "2001:db8::1", 8443},
		{"example.com", "example.com", -1},
		{"example.com:http", "example.com:http", -1},
		{"example.com:70000", "example.com:70000", -1},
		{"", "", -1},
	} {
		t.Run(tc.in, func(t *testing.T) {
			host, port, ok := SplitHost(tc.in)
			if host != tc.host || ok != (tc.port >= 0) || ok && port != tc.port {
				t.Errorf("SplitHost(%q) = %q, %d, %v; want %q, port %d", tc.in, host, port, ok, tc.host, tc.port)
			}
		})
	}
}

func TestMethod(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"GET", "GET"}, {"POST", "POST"}, {"PATCH", "PATCH"}, {"", "GET"}, {"PROPFIND", "_OTHER"}, {"get", "_OTHER"},
	} {
		if got := Method(tc.in); got != tc.want {
			t.Errorf("Method(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// timeoutErr is a net.Error that timed out, as a dial deadline gives.
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestErrorType(t *testing.T) {
	opErr := func(err error) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", err)}
	}
	for _, tc := range []struct {
		name   string
		status int
		err    error
		want   string
	}{
		{"ok", 200, nil, ""},
		{"redirect", 302, nil, ""},
		{"client error", 404, nil, "404"},
		{"too many requests", 429, nil, "429"},
		{"server error", 503, nil, "503"},
		{"pool timeout", 0, fmt.Errorf("waiting: %w", warmpool.ErrPoolTimeout), "pool_timeout"},
		{"too large", 200, warmpool.ErrResponseTooLarge, "response_too_large"},
		{"closed", 0, warmpool.ErrClosed, "client_closed"},
		{"canceled", 0, context.Canceled, "canceled"},
		{"deadline", 0, fmt.Errorf("x: %w", context.DeadlineExceeded), "timeout"},
		{"net timeout", 0, &net.OpError{Op: "read", Err: timeoutErr{}}, "timeout"},
		{"refused", 0, opErr(syscall.ECONNREFUSED), "connection_refused"},
		{"reset", 0, opErr(syscall.ECONNRESET), "connection_reset"},
		{"broken pipe", 0, opErr(syscall.EPIPE), "connection_reset"},
		{"dns", 0, &net.DNSError{Err: "no such host", Name: "nowhere.invalid", IsNotFound: true}, "*net.DNSError"},
		{"eof", 0, fmt.Errorf("reading: %w", io.ErrUnexpectedEOF), "connection_closed"},
		{"wrapped", 0, &url.Error{Op: "Get", URL: "http://x", Err: fmt.Errorf("a: %w", &net.AddrError{Err: "bad"})}, "*net.AddrError"},
		{"plain", 0, errors.New("boom"), "*errors.errorString"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ErrorType(tc.status, tc.err); got != tc.want {
				t.Errorf("ErrorType(%d, %v) = %q, want %q", tc.status, tc.err, got, tc.want)
			}
		})
	}
}

// TestCloseReasonsCoverEveryField fails when warmpool.CloseReasons gains a
// reason that the exporters do not report.
func TestCloseReasonsCoverEveryField(t *testing.T) {
	typ := reflect.TypeFor[warmpool.CloseReasons]()
	names := map[string]bool{}
	for i := range typ.NumField() {
		var r warmpool.CloseReasons
		reflect.ValueOf(&r).Elem().Field(i).SetInt(1)
		var got []string
		for _, n := range CloseReasons(r) {
			if n.N != 0 {
				got = append(got, n.Name)
			}
		}
		if len(got) != 1 {
			t.Errorf("CloseReasons.%s = 1 shows as reasons %q, want exactly one", typ.Field(i).Name, got)
			continue
		}
		names[got[0]] = true
	}
	if n := len(CloseReasons(warmpool.CloseReasons{})); len(names) != n || n != typ.NumField() {
		t.Errorf("%d fields map to %d distinct reasons of %d reported", typ.NumField(), len(names), n)
	}
}

func TestDialFailureKindsCoverEveryField(t *testing.T) {
	typ := reflect.TypeFor[warmpool.DialFailures]()
	for i := range typ.NumField() {
		var d warmpool.DialFailures
		reflect.ValueOf(&d).Elem().Field(i).SetInt(1)
		var total int64
		for _, k := range DialFailureKinds(d) {
			total += k.N
		}
		if total != 1 {
			t.Errorf("DialFailures.%s = 1 reported as %d failures, want 1", typ.Field(i).Name, total)
		}
	}
}
