package refserver

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// This file owns the per-connection lifecycle that real servers impose on a
// client's pool: closing connections idle for Options.IdleTimeout (uvicorn's
// timeout_keep_alive), ending them after Options.MaxRequestsPerConn requests
// (nginx's keepalive_requests), and doing either with a TCP RST instead of a
// FIN (Options.ResetIdle). It also decides, once per connection, why the
// connection closed, for Stats.ClosedIdle and Stats.ClosedMaxRequests.
//
// The timing itself is net/http's, which is exact: an HTTP/1.1 connection in
// StateIdle gets a read deadline of IdleTimeout and is closed when it fires;
// an HTTP/2 connection with no open stream for IdleTimeout gets a GOAWAY and is
// closed one second later (http2goAwayTimeout) or when the client hangs up.
// A handler that sets "Connection: close" makes HTTP/1.1 close after the reply
// and HTTP/2 send a GOAWAY, finish the streams it has accepted, and close.

// closeReason is why the server ended a connection.
type closeReason int32

const (
	reasonNone        closeReason = iota
	reasonIdle                    // Options.IdleTimeout elapsed with no request in flight
	reasonMaxRequests             // Options.MaxRequestsPerConn requests were served
)

// trackedConn is a connection accepted from the listener, beneath TLS if any.
// The http.Server sees it directly (cleartext) or inside a *tls.Conn.
type trackedConn struct {
	net.Conn
	s *Server

	requests atomic.Int64 // requests served on this connection
	h2       atomic.Bool  // a request arrived over HTTP/2
	maxed    atomic.Bool  // the MaxRequestsPerConn-th request was answered
	goneAway atomic.Bool  // counted in Stats.GoAways

	mu        sync.Mutex
	idleSince time.Time // when it last became idle; zero while new or active
	closed    bool
}

// trackListener wraps every accepted connection in a trackedConn.
type trackListener struct {
	net.Listener
	s *Server
}

func (l *trackListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &trackedConn{Conn: c, s: l.s}, nil
}

// tracked finds the trackedConn under c, which is one itself or a *tls.Conn
// around one; nil for anything else.
func tracked(c net.Conn) *trackedConn {
	for {
		switch v := c.(type) {
		case *trackedConn:
			return v
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil
		}
	}
}

// setState records the idle periods that IdleTimeout measures. net/http calls
// it (through connState) before it arms its own idle timer, so an idle period
// measured here is never shorter than the server's.
func (c *trackedConn) setState(state http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch state {
	case http.StateIdle:
		c.idleSince = time.Now()
	case http.StateActive:
		c.idleSince = time.Time{}
	}
}

// Close closes the connection once, counting why. An idle connection closed
// after at least IdleTimeout was closed by the idle timeout: net/http's timer
// fired, or, on HTTP/2, the client hung up on the GOAWAY it sent. With
// ResetIdle, such a connection and one ended by MaxRequestsPerConn are closed
// with an RST: SO_LINGER 0 discards what is unsent and aborts the connection.
func (c *trackedConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.Conn.Close() // net.ErrClosed, as a second Close of a net.Conn returns
	}
	c.closed = true
	reason := reasonNone
	if c.maxed.Load() {
		reason = reasonMaxRequests
	} else if t := c.s.opts.IdleTimeout; t > 0 && !c.idleSince.IsZero() && time.Since(c.idleSince) >= t {
		reason = reasonIdle
	}
	c.mu.Unlock()

	switch reason {
	case reasonIdle:
		c.s.c.closedIdle.Add(1)
		if c.h2.Load() {
			c.noteGoAway() // net/http sent it when the idle timer fired
		}
	case reasonMaxRequests:
		c.s.c.closedMaxReqs.Add(1)
	}
	if reason != reasonNone && c.s.opts.ResetIdle {
		if tcp, ok := c.Conn.(*net.TCPConn); ok {
			tcp.SetLinger(0)
			c.s.c.resets.Add(1)
		}
	}
	return c.Conn.Close()
}

// connKey is the context key under which ConnContext stores the trackedConn.
type connKey struct{}

// connContext is http.Server.ConnContext: it hands the trackedConn to the
// requests of its connection, HTTP/1.1 and HTTP/2 alike.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if tc := tracked(c); tc != nil {
		return context.WithValue(ctx, connKey{}, tc)
	}
	return ctx
}

// noteGoAway counts the GOAWAY that ends this HTTP/2 connection, once:
// net/http sends at most one graceful GOAWAY per connection.
func (c *trackedConn) noteGoAway() {
	if c.goneAway.CompareAndSwap(false, true) {
		c.s.c.goAways.Add(1)
	}
}

// beginRequest counts a request on its connection and sets the headers that
// end or describe the connection: "Connection: close" from the
// MaxRequestsPerConn-th request on (a GOAWAY on HTTP/2), and
// "Keep-Alive: timeout=N" on HTTP/1.1 with KeepAliveTimeoutHeader. It runs
// before the handler and returns the connection (nil if unknown) for
// endRequest.
func (s *Server) beginRequest(w http.ResponseWriter, r *http.Request) *trackedConn {
	tc, _ := r.Context().Value(connKey{}).(*trackedConn)
	if tc == nil {
		return nil
	}
	n := tc.requests.Add(1)
	raisePeak(&s.c.connRequestsMax, n)
	if r.ProtoMajor == 2 {
		tc.h2.Store(true)
	}
	if limit := int64(s.opts.MaxRequestsPerConn); limit > 0 && n >= limit {
		w.Header().Set("Connection", "close")
		if n == limit {
			tc.maxed.Store(true)
		}
		return tc
	}
	if s.opts.KeepAliveTimeoutHeader && r.ProtoMajor == 1 {
		w.Header().Set("Keep-Alive", keepAliveValue(s.opts.IdleTimeout))
	}
	return tc
}

// endRequest runs after the handler: an HTTP/2 reply with "Connection: close"
// (MaxRequestsPerConn or the close=1 knob) made net/http send a GOAWAY.
func endRequest(tc *trackedConn, w http.ResponseWriter, r *http.Request) {
	if tc != nil && r.ProtoMajor == 2 && w.Header().Get("Connection") == "close" {
		tc.noteGoAway()
	}
}

// keepAliveValue is the Keep-Alive header for an idle timeout: whole seconds,
// rounded down as uvicorn and nginx do, but at least 1.
func keepAliveValue(idle time.Duration) string {
	return "timeout=" + strconv.FormatInt(max(int64(idle/time.Second), 1), 10)
}
