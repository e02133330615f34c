package warmpooltest

import (
	"crypto/tls"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/refserver"
)

// Options configures a Server. The zero value is a plain HTTP/1.1 server on
// a free loopback port that never closes a keep-alive connection itself.
type Options struct {
	// Proto is the wire protocol:
	//   "http"   (default) cleartext HTTP/1.1;
	//   "tls"    TLS offering HTTP/2 and HTTP/1.1 by ALPN;
	//   "tls-h1" TLS, HTTP/1.1 only;
	//   "h2c"    cleartext HTTP/2 by prior knowledge, and HTTP/1.1.
	// The TLS certificate is self-signed for 127.0.0.1, ::1 and localhost;
	// trust it with Server.TLSConfig.
	Proto string
	// Token, if set, is the bearer token POST /answer requires.
	Token string
	// Delay is the service time of every /answer. Change it with SetDelay.
	Delay time.Duration
	// ResponseBytes is the size of the /answer body. Default 961.
	ResponseBytes int
	// MaxConns, if > 0, closes connections accepted beyond that many open at
	// once, before any TLS handshake (Stats.Refused).
	MaxConns int

	// IdleTimeout closes connections idle this long: HTTP/1.1 ones exactly
	// then, HTTP/2 ones with a GOAWAY then and a close at most a second
	// later (Stats.ClosedIdle). 0 means never.
	IdleTimeout time.Duration
	// MaxRequestsPerConn, if > 0, ends a connection after that many
	// requests: "Connection: close" on the last HTTP/1.1 answer, a GOAWAY on
	// HTTP/2 that lets the streams in flight finish (Stats.ClosedMaxRequests,
	// Stats.GoAways).
	MaxRequestsPerConn int
	// ResetIdle closes the connections ended by IdleTimeout or
	// MaxRequestsPerConn with a TCP RST instead of a FIN (Stats.ClosedReset).
	// It needs one of them.
	ResetIdle bool
	// KeepAliveTimeoutHeader sends "Keep-Alive: timeout=N" on HTTP/1.1
	// answers, N being IdleTimeout in whole seconds, at least 1. It needs
	// IdleTimeout.
	KeepAliveTimeoutHeader bool
}

// Server is a running reference backend. Its methods are safe for
// concurrent use.
type Server struct {
	// URL is the base URL, "http://127.0.0.1:PORT" or "https://127.0.0.1:PORT",
	// with no trailing slash.
	URL string

	srv   *refserver.Server
	proto string

	mu     sync.Mutex
	client *http.Client // made by the first Client call
}

// NewServer starts a server for the test t and closes it when t ends. It
// fails t at once if the server cannot start, as for invalid Options.
func NewServer(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatalf("warmpooltest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("warmpooltest: close: %v", err)
		}
	})
	return s
}

// Start starts a server outside a test, for TestMain or an Example. The
// caller must Close it.
func Start(opts Options) (*Server, error) {
	srv, err := refserver.New(refserver.Options{
		Proto:                  opts.Proto,
		Token:                  opts.Token,
		Delay:                  opts.Delay,
		ResponseBytes:          opts.ResponseBytes,
		MaxConns:               opts.MaxConns,
		IdleTimeout:            opts.IdleTimeout,
		MaxRequestsPerConn:     opts.MaxRequestsPerConn,
		ResetIdle:              opts.ResetIdle,
		KeepAliveTimeoutHeader: opts.KeepAliveTimeoutHeader,
	})
	if err != nil {
		return nil, err
	}
	return &Server{URL: srv.URL(), srv: srv, proto: opts.Proto}, nil
}

// AnswerURL is URL + "/answer", the endpoint that answers JSON questions.
func (s *Server) AnswerURL() string { return s.URL + "/answer" }

// Addr is the listen address with its port, "127.0.0.1:PORT".
func (s *Server) Addr() string { return s.srv.Addr() }

// TLSConfig returns a new *tls.Config that trusts the server's certificate,
// for warmpool.WithTLSConfig or your own transport; nil for a cleartext
// server. The caller may modify it.
func (s *Server) TLSConfig() *tls.Config { return s.srv.ClientTLSConfig() }

// Client returns a plain *http.Client for the server, made on first use and
// shared afterwards: it trusts the certificate and speaks the server's
// protocol (HTTP/2 for "tls" and, by prior knowledge, for "h2c"). Close
// closes its idle connections. Use it to reach the server around the client
// under test, for example to read /stats.
func (s *Server) Client() *http.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client != nil {
		return s.client
	}
	var p http.Protocols
	switch s.proto {
	case "tls":
		p.SetHTTP1(true)
		p.SetHTTP2(true)
	case "h2c":
		p.SetUnencryptedHTTP2(true)
	default:
		p.SetHTTP1(true)
	}
	s.client = &http.Client{Transport: &http.Transport{
		TLSClientConfig:   s.TLSConfig(),
		Protocols:         &p,
		ForceAttemptHTTP2: s.proto == "tls",
	}}
	return s.client
}

// SetStatus makes every /answer reply code with a small JSON body, as a
// failing backend or a load shedder does, until SetStatus(0). Such answers
// are not counted in Stats.Executions. It panics unless code is 0 or in
// 200..599.
func (s *Server) SetStatus(code int) { s.srv.SetStatus(code) }

// SetDelay changes the service time of the requests that start from now on.
func (s *Server) SetDelay(d time.Duration) { s.srv.SetDelay(d) }

// ResetPeak sets Stats.PeakOpen to the connections open now, so a phase of
// a test can measure its own peak.
func (s *Server) ResetPeak() { s.srv.ResetPeak() }

// Close stops the server at once, closing every connection and cancelling
// requests in flight, and closes the idle connections of Client. The
// counters are final when it returns. It is idempotent.
func (s *Server) Close() error {
	err := s.srv.Close()
	s.mu.Lock()
	c := s.client
	s.mu.Unlock()
	if c != nil {
		c.CloseIdleConnections()
	}
	return err
}
