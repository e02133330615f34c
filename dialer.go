package warmpool

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// dialer opens and accounts every connection the transport uses. It is the
// only source of truth for connection counts: net/http itself keeps none that
// can be read.
//
// It does the TLS handshake itself (DialTLSContext) rather than leaving it to
// net/http, for three reasons that net/http's own handshake cannot serve:
// handshakes and their failures are counted per host, the negotiated
// protocol is known as the connection opens (the HTTP/2 dial gate needs it),
// and the TCP connect and the handshake share one connection_timeout.
type dialer struct {
	net        net.Dialer
	now        func() time.Time
	idleExpiry time.Duration
	maxAge     time.Duration // 0: connections never retire
	learnIdle  bool          // learn each server's idle timeout
	rand       func() float64
	hooks      *Hooks
	log        func(msg string, args ...any) // lifecycle notes, such as a learned idle timeout
	tls        *tls.Config                   // for DialTLSContext; NextProtos set from the protocols
	h2c        bool                          // plain connections speak HTTP/2 by prior knowledge
	http2      bool                          // HTTP/2 is offered over TLS
	maxConns   int
	closed     atomic.Bool
	done       <-chan struct{} // closed by Client.Close

	hosts sync.Map // "host:port" -> *hostPool
	mu    sync.Mutex
	list  []*hostPool // every hostPool ever created, in creation order; guarded by mu
}

// hostPool holds the counters and the open connections for one dialed
// address. Counters are atomics so the request path takes no lock.
type hostPool struct {
	addr       string
	name       string // for an endpoint of a balanced host name: that name; else ""
	d          *dialer
	ep         atomic.Pointer[endpoint] // the endpoint it serves now, if any
	idleExpiry time.Duration

	inflight     atomic.Int64  // requests between RoundTrip and body close
	holding      atomic.Int64  // of those, how many hold a connection
	tracked      atomic.Bool   // requests are counted here (not a proxy's address)
	slots        chan struct{} // request slots for HTTP/1: max_connections
	proto        atomic.Int32  // protoUnknown, protoHTTP1 or protoHTTP2, as last negotiated
	dialsAvoided atomic.Int64  // dials held back by the HTTP/2 gate and then not needed
	peak         atomic.Int64  // highest inflight since the janitor last looked
	peakEver     atomic.Int64  // highest inflight ever
	demand       []int64       // janitor only: peaks of the last demand window, one per tick
	requests     atomic.Int64  // requests that got a connection
	reused       atomic.Int64  // of those, on a connection that served before
	poolTimeouts atomic.Int64
	waiting      atomic.Int64
	waits        atomic.Int64
	waitNanos    atomic.Int64
	failures     [numErrorKinds]atomic.Int64 // attempts that ended in an error, by ErrorKind

	gate       dialGate
	maxStreams atomic.Int64 // most requests seen at once on one HTTP/2 connection
	idle       learnedIdle

	dialFail      [dialKinds]atomic.Int64
	tlsHandshakes atomic.Int64
	dialNanos     atomic.Int64 // total TCP connect time of successful dials
	tlsNanos      atomic.Int64

	dialing atomic.Int64
	open    atomic.Int64
	created atomic.Int64
	closed  [closeReasons]atomic.Int64

	mu    sync.Mutex
	conns map[*conn]struct{}
}

// Protocols a host was last seen to speak.
const (
	protoUnknown int32 = iota
	protoHTTP1
	protoHTTP2
)

func (d *dialer) host(addr string) *hostPool { return d.namedHost(addr, "") }

// namedHost returns the hostPool of addr for host name name ("" for a
// dialed address). An endpoint address that another name already uses, or
// that is also dialed as it is, gets the key "ip:port@name": its connections
// carry another TLS server name, so they cannot share a pool.
func (d *dialer) namedHost(addr, name string) *hostPool {
	if h, ok := d.hosts.Load(addr); ok && h.(*hostPool).name == name {
		return h.(*hostPool)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if h, ok := d.hosts.Load(addr); ok {
		if h.(*hostPool).name == name {
			return h.(*hostPool)
		}
		addr += "@" + name
		if h, ok := d.hosts.Load(addr); ok {
			return h.(*hostPool)
		}
	}
	h := &hostPool{addr: addr, name: name, d: d, idleExpiry: d.idleExpiry, slots: make(chan struct{}, d.maxConns), conns: make(map[*conn]struct{})}
	h.gate.wake = make(chan struct{})
	d.hosts.Store(addr, h)
	d.list = append(d.list, h)
	return h
}

func (d *dialer) hostList() []*hostPool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*hostPool(nil), d.list...)
}

// DialContext is the transport's dial function for http:// targets.
func (d *dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return d.dial(ctx, network, addr, false)
}

// DialTLSContext dials https:// targets and completes the TLS handshake.
func (d *dialer) DialTLSContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return d.dial(ctx, network, addr, true)
}

func (d *dialer) dial(ctx context.Context, network, addr string, useTLS bool) (net.Conn, error) {
	if d.closed.Load() {
		return nil, ErrClosed
	}
	return d.dialTo(ctx, network, d.host(addr), addr, "", useTLS)
}

// dialTo dials addr for h. serverName is the TLS server name; "" takes it
// from addr. An endpoint of a balanced host name dials its IP address with
// the host name as server name, so certificates are checked against the name.
func (d *dialer) dialTo(ctx context.Context, network string, h *hostPool, addr, serverName string, useTLS bool) (_ net.Conn, err error) {
	if d.closed.Load() {
		return nil, ErrClosed
	}
	if h.proto.Load() == protoHTTP2 {
		// net/http dials for an HTTP/2 host only when no open connection
		// can take another stream: they are full, or draining after a
		// GOAWAY. A connection in use or used a moment ago (less than an
		// idle timeout could be) is one of those: when it later closes,
		// that is no idle timeout to learn (a server that ends connections
		// after N requests closes them a while after their last stream).
		now := d.now().UnixNano()
		for _, c := range h.connList() {
			if c.inUse.Load() != 0 || now-c.idleSince.Load() < int64(minLearnedIdle) {
				c.announced.Store(true)
			}
		}
	}
	// connection_timeout bounds everything from here: the wait at the
	// gate, the TCP connect and the TLS handshake.
	ctx, cancel := context.WithTimeout(ctx, d.net.Timeout)
	defer cancel()
	if h.tracked.Load() {
		// The gate lets through only the dials waiting requests need.
		release, err := h.gate.enter(ctx, h, stateFrom(ctx))
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				h.dialFail[dialTimeout].Add(1)
				err = fmt.Errorf("no connection within connection_timeout (%s): %w", d.net.Timeout, err)
			}
			return nil, &net.OpError{Op: "dial", Net: network, Err: err}
		}
		defer func() { release(err == nil) }()
	}
	h.dialing.Add(1)
	defer h.dialing.Add(-1)
	connectStart := d.now()
	nc, err := d.net.DialContext(ctx, network, addr)
	if err != nil {
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			// net.Dialer says "i/o timeout" (its deadline, connection_
			// timeout's, may fire a moment before the context's): say which
			// setting ran out, and match context.DeadlineExceeded like every
			// other deadline.
			err = &net.OpError{Op: "dial", Net: network, Err: fmt.Errorf("no connection within connection_timeout (%s): %w (%w)", d.net.Timeout, context.DeadlineExceeded, err)}
		}
		h.dialFail[dialKindOf(err)].Add(1)
		return nil, err
	}
	h.dialNanos.Add(int64(d.now().Sub(connectStart)))
	c := d.track(h, nc)
	var out net.Conn = c
	proto := protoHTTP1
	if d.h2c {
		proto = protoHTTP2
	}
	if useTLS {
		tc, err := d.handshake(ctx, c, network, addr, serverName)
		if err != nil {
			return nil, err
		}
		out = tc
		if tc.ConnectionState().NegotiatedProtocol == "h2" {
			proto = protoHTTP2
		} else {
			proto = protoHTTP1
		}
	}
	h.proto.Store(proto)
	c.h2.Store(proto == protoHTTP2)
	c.tls.Store(useTLS)
	if d.closed.Load() { // Close ran while we dialed
		c.closeWith(closeClient)
		return nil, ErrClosed
	}
	return out, nil
}

// track wraps a new connection and counts it open until it closes.
func (d *dialer) track(h *hostPool, nc net.Conn) *conn {
	now := d.now()
	c := &conn{Conn: nc, host: h, born: now, hooks: d.hooks}
	c.idleSince.Store(now.UnixNano())
	if d.maxAge > 0 {
		// ±10 % jitter so connections dialed together do not retire together.
		age := time.Duration(float64(d.maxAge) * (0.9 + 0.2*d.rand()))
		c.retireAt = now.Add(age).UnixNano()
	}
	h.mu.Lock()
	h.conns[c] = struct{}{}
	h.mu.Unlock()
	h.open.Add(1)
	h.created.Add(1)
	if f := d.hooks.ConnOpened; f != nil {
		f(c.info()) // as Stats counts it: once connected, before any TLS handshake
	}
	return c
}

// handshake runs the TLS handshake on c within ctx, which carries what is
// left of connection_timeout.
func (d *dialer) handshake(ctx context.Context, c *conn, network, addr, serverName string) (*tls.Conn, error) {
	cfg := d.tls.Clone()
	if cfg.ServerName == "" && serverName != "" {
		cfg.ServerName = serverName
	}
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		cfg.ServerName = host
	}
	tc := tls.Client(c, cfg)
	hsStart := d.now()
	c.reason.Store(int32(closeError)) // a close before the handshake is done is a failure
	if err := tc.HandshakeContext(ctx); err != nil {
		kind := dialTLS
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			kind = dialTimeout
			err = fmt.Errorf("TLS handshake not done within connection_timeout (%s): %w", d.net.Timeout, context.DeadlineExceeded)
		} else if !isCertError(err) {
			err = &tlsHandshakeError{err}
		}
		if errors.Is(err, context.Canceled) {
			// net/http gave the dial up (no request waits for it): not a
			// failure of the server's; the connection closes unused.
			c.closeWith(closeUnused)
			return nil, &net.OpError{Op: "dial", Net: network, Addr: c.RemoteAddr(), Err: err}
		}
		c.host.dialFail[kind].Add(1)
		c.failed.Store(true)
		c.closeWith(closeError)
		// A dial error, like a refused connection: nothing was sent.
		return nil, &net.OpError{Op: "dial", Net: network, Addr: c.RemoteAddr(), Err: err}
	}
	c.reason.CompareAndSwap(int32(closeError), int32(closeUnknown))
	c.host.tlsHandshakes.Add(1)
	c.host.tlsNanos.Add(int64(d.now().Sub(hsStart)))
	return tc, nil
}

// closeAll closes every open connection, idle or not.
func (d *dialer) closeAll(reason closeReason) {
	for _, h := range d.hostList() {
		for _, c := range h.connList() {
			c.closeWith(reason)
		}
	}
}

// connList returns h's open connections.
func (h *hostPool) connList() []*conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	conns := make([]*conn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	return conns
}

// notePeak records n requests in flight if it is a new peak.
func (h *hostPool) notePeak(n int64) {
	storeMax(&h.peak, n)
	storeMax(&h.peakEver, n)
}

// storeMax raises v to n if n is larger.
func storeMax(v *atomic.Int64, n int64) {
	for p := v.Load(); n > p && !v.CompareAndSwap(p, n); p = v.Load() {
	}
}

// noteFailure counts an attempt that ended in err.
func (h *hostPool) noteFailure(err error) {
	h.failures[errorKindIndex(ErrorKind(err))].Add(1)
}
