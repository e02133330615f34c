package warmpool

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/refserver"
)

func (r retryClass) String() string {
	switch r {
	case noRetry:
		return "noRetry"
	case retryAlways:
		return "retryAlways"
	case retryIdempot:
		return "retryIdempot"
	}
	return fmt.Sprintf("retryClass(%d)", int(r))
}

func TestRetryClassify(t *testing.T) {
	status := func(code int) *http.Response { return &http.Response{StatusCode: code} }
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	tests := []struct {
		name string
		resp *http.Response
		err  error
		want retryClass
	}{
		{"200", status(200), nil, noRetry},
		{"400", status(400), nil, noRetry},
		{"401", status(401), nil, noRetry},
		{"404", status(404), nil, noRetry},
		{"408 request timeout", status(408), nil, retryAlways},
		{"429 too many requests", status(429), nil, retryAlways},
		{"500", status(500), nil, noRetry},
		{"502 bad gateway", status(502), nil, retryIdempot},
		{"503 unavailable", status(503), nil, retryAlways},
		{"504 gateway timeout", status(504), nil, retryIdempot},

		{"dial refused", nil, refused, retryAlways},
		{"dial refused, wrapped", nil, fmt.Errorf("attempt: %w", refused), retryAlways},
		{"bare ECONNREFUSED", nil, syscall.ECONNREFUSED, retryAlways},
		{"dial timeout", nil, &net.OpError{Op: "dial", Net: "tcp", Err: context.DeadlineExceeded}, retryAlways},
		{"DNS", nil, &net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}, retryAlways},
		{"TLS handshake timeout string", nil, errors.New("net/http: TLS handshake timeout"), retryAlways},
		{"TLS handshake timeout string, wrapped", nil, fmt.Errorf("x: %w", errors.New("net/http: TLS handshake timeout")), retryAlways},
		{"TLS alert", nil, tls.AlertError(40), retryAlways},
		{"TLS record header", nil, tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, retryAlways},

		{"cert unknown authority", nil, &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, noRetry},
		{"cert hostname", nil, x509.HostnameError{Host: "example.com", Certificate: &x509.Certificate{}}, noRetry},
		{"cert invalid, in a dial error", nil, &net.OpError{Op: "dial", Err: x509.CertificateInvalidError{Reason: x509.Expired}}, noRetry},

		{"reset", nil, reset, retryIdempot},
		{"EOF", nil, io.EOF, retryIdempot},
		{"unexpected EOF", nil, io.ErrUnexpectedEOF, retryIdempot},
		{"request_timeout", nil, &timeoutError{d: time.Second}, retryIdempot},
		{"deadline exceeded", nil, context.DeadlineExceeded, retryIdempot},

		{"ErrPoolTimeout", nil, fmt.Errorf("%w after 1s", ErrPoolTimeout), noRetry},
		{"context canceled", nil, context.Canceled, noRetry},
		{"context canceled, wrapped", nil, &net.OpError{Op: "dial", Err: context.Canceled}, noRetry},
		{"ErrClosed", nil, ErrClosed, noRetry},
		{"ErrResponseTooLarge", nil, fmt.Errorf("%w (1 bytes)", ErrResponseTooLarge), noRetry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classify(tt.resp, tt.err); got != tt.want {
				t.Errorf("classify(%v, %v) = %v, want %v", statusOf(tt.resp), tt.err, got, tt.want)
			}
		})
	}
}

// TestRetryClassifyRealErrors classifies errors as the transport really
// returns them, not as a test builds them.
func TestRetryClassifyRealErrors(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxRetries = -1
	cfg.ConnectionTimeout = 200 * time.Millisecond

	get := func(t *testing.T, c *Client, url string) error {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("GET %s succeeded, want an error", url)
		}
		return err
	}
	newPlain := func(t *testing.T, cfg Config) *Client {
		c, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	t.Run("dial refused", func(t *testing.T) {
		err := get(t, newPlain(t, cfg), "http://"+closedAddr(t)+"/")
		if got := classify(nil, err); got != retryAlways {
			t.Errorf("classify(%v) = %v, want retryAlways", err, got)
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		srv := startServer(t, refserver.Options{Proto: "tls"})
		cfg := cfg
		cfg.ConnectionTimeout = 10 * time.Second              // a handshake under -race on a busy machine is slow
		err := get(t, newPlain(t, cfg), srv.URL()+"/healthz") // no WithTLSConfig: the CA is unknown
		if got := classify(nil, err); got != noRetry {
			t.Errorf("classify(%v) = %v, want noRetry", err, got)
		}
	})
	t.Run("request_timeout", func(t *testing.T) {
		srv := startServer(t, refserver.Options{})
		cfg := cfg
		cfg.RequestTimeout = 50 * time.Millisecond
		c := newClient(t, srv, cfg)
		err := c.PostJSON(context.Background(), srv.URL()+"/answer?delay=1s", question, nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want a deadline error", err)
		}
		if got := classify(nil, err); got != retryIdempot {
			t.Errorf("classify(%v) = %v, want retryIdempot", err, got)
		}
	})
	// warmpool does TLS handshakes in its own dialer, bounded by
	// connection_timeout. A handshake that times out happens before any
	// byte of the request is sent, so, like a connect timeout, it is safe
	// to retry for every method.
	t.Run("TLS handshake timeout in the dialer", func(t *testing.T) {
		addr := retrySilentListener(t) // accepts, never answers the ClientHello
		c := newPlain(t, cfg)
		start := time.Now()
		err := get(t, c, "https://"+addr+"/")
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("handshake gave up after %s, connection_timeout is %s", d, cfg.ConnectionTimeout)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, want it to match context.DeadlineExceeded", err)
		}
		if n := c.Stats().DialFailures.Timeout; n != 1 {
			t.Errorf("DialFailures.Timeout = %d, want 1", n)
		}
		if got := classify(nil, err); got != retryAlways {
			t.Errorf("classify(%q) = %v, want retryAlways (the request was never sent)", err, got)
		}
	})
}

// retrySilentListener accepts connections on loopback and never writes.
func retrySilentListener(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

func TestRetryIsIdempotent(t *testing.T) {
	tests := []struct {
		method string
		header string // header set to "k1"
		want   bool
	}{
		{"", "", true},
		{http.MethodGet, "", true},
		{http.MethodHead, "", true},
		{http.MethodOptions, "", true},
		{http.MethodPut, "", true},
		{http.MethodDelete, "", true},
		{http.MethodTrace, "", true},
		{http.MethodPost, "", false},
		{http.MethodPatch, "", false},
		{http.MethodConnect, "", false},
		{"get", "", false}, // methods are case-sensitive
		{http.MethodPost, "Idempotency-Key", true},
		{http.MethodPost, "X-Idempotency-Key", true},
		{http.MethodPatch, "Idempotency-Key", true},
		{http.MethodPost, "X-Request-Id", false},
	}
	for _, tt := range tests {
		t.Run(tt.method+"/"+tt.header, func(t *testing.T) {
			req := &http.Request{Method: tt.method, Header: http.Header{}}
			if tt.header != "" {
				req.Header.Set(tt.header, "k1")
			}
			if got := isIdempotent(req); got != tt.want {
				t.Errorf("isIdempotent(%s with %q) = %v, want %v", tt.method, tt.header, got, tt.want)
			}
		})
	}
}

func TestRetryReplayable(t *testing.T) {
	mk := func(body io.Reader) *http.Request {
		req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1/", body)
		if err != nil {
			t.Fatal(err)
		}
		return req
	}
	oneShot := mk(io.MultiReader(strings.NewReader("once"))) // no GetBody
	tests := []struct {
		name string
		req  *http.Request
		want bool
	}{
		{"nil body", mk(nil), true},
		{"NoBody", &http.Request{Method: http.MethodPost, Body: http.NoBody}, true},
		{"bytes.Reader (GetBody set)", mk(bytes.NewReader([]byte("{}"))), true},
		{"strings.Reader (GetBody set)", mk(strings.NewReader("{}")), true},
		{"one-shot reader", oneShot, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := replayable(tt.req); got != tt.want {
				t.Errorf("replayable = %v, want %v", got, tt.want)
			}
		})
	}
}
