package refserver

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for the zero values of Options.
const (
	DefaultAddr          = "127.0.0.1:0"
	DefaultResponseBytes = 961

	readHeaderTimeout = 10 * time.Second
	// closeGrace bounds how long Close waits for connection goroutines to
	// report StateClosed and for handlers to return after their context is
	// cancelled; both normally take microseconds.
	closeGrace = 5 * time.Second
)

// Options configures a Server. The zero value is a plain HTTP/1.1 server on a
// free loopback port.
type Options struct {
	// Addr is the listen address. Default "127.0.0.1:0" (a free port).
	Addr string
	// Proto is the wire protocol:
	//   "http"   (default) cleartext HTTP/1.1 only;
	//   "tls"    TLS, offering h2 and http/1.1 by ALPN;
	//   "tls-h1" TLS, HTTP/1.1 only;
	//   "h2c"    cleartext HTTP/2 by prior knowledge, and HTTP/1.1, on one port.
	Proto string
	// ResponseBytes is the size of the /answer JSON body. Default 961.
	ResponseBytes int
	// Delay is the service time added to every executed /answer and every
	// injected fault. Default 0. Change it later with SetDelay.
	Delay time.Duration
	// Token, if non-empty, is the bearer token /answer requires.
	Token string
	// IdleTimeout closes connections idle this long, as uvicorn does after
	// 5 s (timeout_keep_alive) and nginx after keepalive_timeout: an
	// HTTP/1.1 connection is closed exactly then, even if the client is about
	// to reuse it; an HTTP/2 one (h2 or h2c) is sent a GOAWAY then and closed
	// a second later at most. It is http.Server.IdleTimeout, which net/http
	// applies to HTTP/2 too. Default 0: no idle timeout. Counted in
	// Stats.ClosedIdle.
	IdleTimeout time.Duration
	// MaxRequestsPerConn, if > 0, ends a connection after that many requests,
	// as nginx's keepalive_requests does: on HTTP/1.1 the Nth answer carries
	// "Connection: close" and the connection closes after it; on HTTP/2 the
	// Nth answer comes with a GOAWAY, the streams already opened finish, and
	// the connection closes a second after the last. Counted in
	// Stats.ClosedMaxRequests and, on HTTP/2, Stats.GoAways.
	MaxRequestsPerConn int
	// ResetIdle closes the connections that IdleTimeout and
	// MaxRequestsPerConn end with a TCP RST instead of a FIN (SO_LINGER 0),
	// as a load balancer or a crashed worker does: a client reading such a
	// connection gets ECONNRESET, not EOF. On HTTP/2 the GOAWAY still comes
	// first. It needs IdleTimeout or MaxRequestsPerConn.
	ResetIdle bool
	// KeepAliveTimeoutHeader adds "Keep-Alive: timeout=N" to HTTP/1.1
	// answers, N being IdleTimeout in whole seconds (at least 1), as servers
	// that advertise their idle timeout do. It needs IdleTimeout.
	KeepAliveTimeoutHeader bool
	// MaxConns, if > 0, caps the connections open at once; an extra
	// connection is closed as soon as it is accepted and counted as Refused.
	MaxConns int
	// Logger receives lifecycle and http.Server error messages. Nil is silent.
	Logger *slog.Logger
	// Routes mounts extra handlers by http.ServeMux pattern, such as
	// "GET /metrics". They are counted like the built-in ones.
	Routes map[string]http.Handler
	// Upstream, if set, is called by every executed /answer with the
	// question, before answering: a backend that calls another service.
	// An error answers 502 with the error's message.
	Upstream func(ctx context.Context, question json.RawMessage) error
}

// withDefaults validates o and fills in the defaults.
func (o Options) WithDefaults() (Options, error) {
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	switch o.Proto {
	case "":
		o.Proto = "http"
	case "http", "tls", "tls-h1", "h2c":
	default:
		return o, fmt.Errorf("refserver: unknown proto %q (want http, tls, tls-h1 or h2c)", o.Proto)
	}
	switch {
	case o.ResponseBytes == 0:
		o.ResponseBytes = DefaultResponseBytes
	case o.ResponseBytes < 0 || o.ResponseBytes > maxResponseBytes:
		return o, fmt.Errorf("refserver: response bytes %d out of range 0..%d", o.ResponseBytes, maxResponseBytes)
	}
	if o.Delay < 0 {
		return o, fmt.Errorf("refserver: negative delay %v", o.Delay)
	}
	if o.IdleTimeout < 0 {
		return o, fmt.Errorf("refserver: negative idle timeout %v", o.IdleTimeout)
	}
	if o.MaxRequestsPerConn < 0 {
		return o, fmt.Errorf("refserver: negative max requests per conn %d", o.MaxRequestsPerConn)
	}
	if o.ResetIdle && o.IdleTimeout == 0 && o.MaxRequestsPerConn == 0 {
		return o, errors.New("refserver: reset idle needs an idle timeout or max requests per conn")
	}
	if o.KeepAliveTimeoutHeader && o.IdleTimeout == 0 {
		return o, errors.New("refserver: keep-alive timeout header needs an idle timeout")
	}
	if o.MaxConns < 0 {
		return o, fmt.Errorf("refserver: negative max conns %d", o.MaxConns)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

func (o Options) isTLS() bool { return o.Proto == "tls" || o.Proto == "tls-h1" }

func (o Options) protocols() *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(true)
	switch o.Proto {
	case "tls":
		p.SetHTTP2(true)
	case "h2c":
		p.SetUnencryptedHTTP2(true)
	}
	return &p
}

// Server is a running reference backend. Its methods are safe for concurrent
// use.
type Server struct {
	opts  Options
	srv   *http.Server
	addr  string
	url   string
	certs *certBundle // nil for cleartext
	log   *slog.Logger

	c      counters
	status atomic.Int64 // forced /answer status, 0 = normal
	delay  atomic.Int64 // service delay in nanoseconds
	idem   *idemStore

	connsMu sync.Mutex
	conns   map[net.Conn]struct{} // open connections, as seen by ConnState

	cancel    context.CancelFunc // cancels every request context
	serveDone chan struct{}
	serveErr  error // set before serveDone is closed

	closeOnce sync.Once
	closeErr  error
}

// New starts a server. It listens and serves before it returns, so URL is
// usable at once; the caller must Close or Shutdown it.
func New(opts Options) (*Server, error) {
	opts, err := opts.WithDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:      opts,
		log:       opts.Logger,
		idem:      newIdemStore(idemCapacity),
		conns:     make(map[net.Conn]struct{}),
		serveDone: make(chan struct{}),
	}
	s.delay.Store(int64(opts.Delay))
	if opts.isTLS() {
		if s.certs, err = testCert(); err != nil {
			return nil, err
		}
	}

	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("refserver: %w", err)
	}
	s.addr = ln.Addr().String()
	s.url = "http://" + s.addr
	if opts.isTLS() {
		s.url = "https://" + s.addr
	}
	ln = &trackListener{Listener: ln, s: s}
	if opts.MaxConns > 0 {
		ln = &limitListener{Listener: ln, s: s, max: int64(opts.MaxConns)}
	}

	mux := http.NewServeMux()
	mux.HandleFunc("POST /answer", s.handleAnswer)
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /stats", s.handleStats)
	for pattern, h := range opts.Routes {
		mux.Handle(pattern, h)
	}

	baseCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.srv = &http.Server{
		Handler:           s.instrument(mux),
		Protocols:         opts.protocols(),
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       opts.IdleTimeout,
		ConnState:         s.connState,
		ConnContext:       connContext,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn), // silent when Logger is nil
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
	}
	if s.certs != nil {
		s.srv.TLSConfig = serverTLSConfig(s.certs)
	}

	go s.serve(ln)
	s.log.Info("refserver listening", "url", s.url, "proto", opts.Proto)
	return s, nil
}

func (s *Server) serve(ln net.Listener) {
	defer close(s.serveDone)
	var err error
	if s.certs != nil {
		err = s.srv.ServeTLS(ln, "", "")
	} else {
		err = s.srv.Serve(ln)
	}
	if !errors.Is(err, http.ErrServerClosed) {
		s.serveErr = fmt.Errorf("refserver: serve: %w", err)
		s.log.Error("refserver stopped serving", "err", err)
	}
}

// URL is the base URL, "http://127.0.0.1:PORT" or "https://127.0.0.1:PORT".
func (s *Server) URL() string { return s.url }

// Addr is the listen address with the actual port, "127.0.0.1:PORT"; pass it as
// Options.Addr to restart on the same port.
func (s *Server) Addr() string { return s.addr }

// ClientTLSConfig returns a new *tls.Config that trusts the server's
// certificate, or nil for a cleartext server. The caller may modify it.
func (s *Server) ClientTLSConfig() *tls.Config {
	if s.certs == nil {
		return nil
	}
	return &tls.Config{RootCAs: s.certs.roots, MinVersion: tls.VersionTLS12}
}

// SetStatus forces every /answer to reply code with a small body, as an
// injected fault; 0 restores normal answers. It panics unless code is 0 or in
// 200..599, as http.ResponseWriter.WriteHeader would later.
func (s *Server) SetStatus(code int) {
	if code != 0 && !validStatus(code) {
		panic(fmt.Sprintf("refserver: invalid status %d", code))
	}
	s.status.Store(int64(code))
}

// SetDelay changes the service delay for requests that start from now on.
// A negative d counts as 0.
func (s *Server) SetDelay(d time.Duration) { s.delay.Store(int64(max(d, 0))) }

// Close stops the server at once: it closes the listener and every connection
// and cancels in-flight requests. It waits briefly for their goroutines to
// finish, so the counters are final when it returns. It is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		err := s.srv.Close()
		<-s.serveDone
		// A connection accepted while srv.Close ran can escape it; close it too.
		s.connsMu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.connsMu.Unlock()
		// Cancel handlers only now that no connection can carry their reply.
		s.cancel()
		ctx, cancel := context.WithTimeout(context.Background(), closeGrace)
		defer cancel()
		_ = s.waitIdle(ctx)
		s.closeErr = errors.Join(err, s.serveErr)
		s.log.Info("refserver closed", "url", s.url)
	})
	return s.closeErr
}

// Shutdown stops the server gracefully: it stops accepting, lets in-flight
// requests finish, and closes idle connections (HTTP/2 ones with a GOAWAY). If
// ctx ends first it returns ctx's error and leaves the rest running; call Close
// to drop them.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.srv.Shutdown(ctx); err != nil {
		return err
	}
	<-s.serveDone
	if err := s.waitIdle(ctx); err != nil {
		return err
	}
	s.cancel()
	s.log.Info("refserver shut down", "url", s.url)
	return s.serveErr
}

// waitIdle waits until no connection is open and no request is in flight.
// After the http.Server has closed its connections, their goroutines report
// StateClosed asynchronously, so this polls.
func (s *Server) waitIdle(ctx context.Context) error {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for s.c.open.Load() > 0 || s.c.inFlight.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// connState counts connections. net/http calls it for StateNew synchronously in
// its accept loop, before the next Accept, which makes limitListener exact.
func (s *Server) connState(c net.Conn, state http.ConnState) {
	if tc := tracked(c); tc != nil {
		tc.setState(state)
	}
	switch state {
	case http.StateNew:
		s.c.accepted.Add(1)
		raisePeak(&s.c.peakOpen, s.c.open.Add(1))
		s.connsMu.Lock()
		s.conns[c] = struct{}{}
		s.connsMu.Unlock()
	case http.StateClosed, http.StateHijacked:
		s.connsMu.Lock()
		delete(s.conns, c)
		s.connsMu.Unlock()
		s.c.closed.Add(1)
		s.c.open.Add(-1)
	}
}

// limitListener closes connections beyond max open ones as soon as they are
// accepted, before the http.Server (or TLS) sees them.
type limitListener struct {
	net.Listener
	s   *Server
	max int64
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.s.c.open.Load() < l.max {
			return c, nil
		}
		l.s.c.refused.Add(1)
		l.s.log.Debug("refserver refused connection", "remote", c.RemoteAddr().String(), "max_conns", l.max)
		c.Close()
	}
}
