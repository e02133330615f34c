package warmpool

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Close reasons, recorded on each connection as it closes.
const (
	closeUnknown    int32 = iota
	closeIdleExpiry       // idle past keepalive_expiry (closed by net/http)
	closeMaxAge           // retired after max_connection_age
	closeServer           // the server closed it (EOF seen by net/http)
	closeError            // a read or write failed
	closeClient           // Close or Shutdown of the client
	closeTrim             // idle above what demand needs
	closeOther            // closed by net/http for another reason (Connection: close, unread body…)
	closeUnused           // closed without ever serving a request (a surplus dial)
	closeReasons
)

// dialer opens and accounts every connection the transport uses. It is the
// only source of truth for connection counts: net/http itself keeps none that
// can be read.
type dialer struct {
	net        net.Dialer
	now        func() time.Time
	idleExpiry time.Duration
	maxAge     time.Duration // 0: connections never retire
	rand       func() float64
	hooks      *Hooks
	tls        *tls.Config // for DialTLSContext; NextProtos set from the protocols
	h2c        bool        // plain connections speak HTTP/2 by prior knowledge
	http2      bool        // HTTP/2 is offered over TLS
	maxConns   int
	closed     atomic.Bool

	hosts sync.Map // "host:port" -> *hostPool
	mu    sync.Mutex
	list  []*hostPool // every hostPool ever created, in creation order; guarded by mu
}

// hostPool holds the counters and the open connections for one dialed
// address. Counters are atomics so the request path takes no lock.
type hostPool struct {
	addr       string
	idleExpiry time.Duration

	inflight     atomic.Int64  // requests between RoundTrip and body close
	holding      atomic.Int64  // of those, how many hold a connection
	tracked      atomic.Bool   // requests are counted here (not a proxy's address)
	probing      atomic.Bool   // a dial is finding out whether the server speaks HTTP/2
	slots        chan struct{} // request slots for HTTP/1: max_connections
	proto        atomic.Int32  // protoUnknown, protoHTTP1 or protoHTTP2, as last negotiated
	dialsAvoided atomic.Int64  // dials held back and then not needed
	peak         atomic.Int64  // highest inflight since the janitor last looked
	peakEver     atomic.Int64  // highest inflight ever
	demand       []int64       // janitor only: peaks of the last keepalive_expiry, one per tick
	requests     atomic.Int64  // requests that got a connection
	reused       atomic.Int64  // of those, on a connection that served before
	poolTimeouts atomic.Int64
	waiting      atomic.Int64
	waits        atomic.Int64
	waitNanos    atomic.Int64

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

func (d *dialer) host(addr string) *hostPool {
	if h, ok := d.hosts.Load(addr); ok {
		return h.(*hostPool)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if h, ok := d.hosts.Load(addr); ok {
		return h.(*hostPool)
	}
	h := &hostPool{addr: addr, idleExpiry: d.idleExpiry, slots: make(chan struct{}, d.maxConns), conns: make(map[*conn]struct{})}
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

// DialTLSContext dials https:// targets and completes the TLS handshake
// itself, rather than leaving it to net/http, so that handshakes and their
// failures are counted, the negotiated protocol is known, and the TCP
// connect and the handshake share one connection_timeout.
func (d *dialer) DialTLSContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return d.dial(ctx, network, addr, true)
}

func (d *dialer) dial(ctx context.Context, network, addr string, useTLS bool) (net.Conn, error) {
	if d.closed.Load() {
		return nil, ErrClosed
	}
	h := d.host(addr)
	// connection_timeout bounds everything from here: the wait at the
	// gate, the TCP connect and the TLS handshake.
	start := time.Now()
	ctx, cancel := context.WithDeadline(ctx, start.Add(d.net.Timeout))
	defer cancel()
	if h.tracked.Load() {
		needed, probe := d.dialNeeded(ctx, h, useTLS)
		if !needed {
			h.dialsAvoided.Add(1)
			return nil, &net.OpError{Op: "dial", Net: network, Err: errDialNotNeeded}
		}
		if probe {
			defer h.probing.Store(false)
		}
	}
	h.dialing.Add(1)
	defer h.dialing.Add(-1)
	connectStart := time.Now()
	nc, err := d.net.DialContext(ctx, network, addr)
	if err != nil {
		h.dialFail[dialKind(err)].Add(1)
		return nil, err
	}
	h.dialNanos.Add(int64(time.Since(connectStart)))
	c := d.track(h, nc)
	var out net.Conn = c
	proto := protoHTTP1
	if d.h2c {
		proto = protoHTTP2
	}
	if useTLS {
		tc, err := d.handshake(ctx, c, network, addr)
		if err != nil {
			return nil, err
		}
		out = tc
		if tc.ConnectionState().NegotiatedProtocol != "h2" {
			proto = protoHTTP1
		} else {
			proto = protoHTTP2
		}
	}
	h.proto.Store(proto)
	if d.closed.Load() { // Close ran while we dialed
		c.closeWith(closeClient)
		return nil, ErrClosed
	}
	if f := d.hooks.ConnOpened; f != nil {
		f(c.info())
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
	return c
}

// handshake runs the TLS handshake on c within ctx, which carries what is
// left of connection_timeout.
func (d *dialer) handshake(ctx context.Context, c *conn, network, addr string) (*tls.Conn, error) {
	cfg := d.tls.Clone()
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		cfg.ServerName = host
	}
	tc := tls.Client(c, cfg)
	hsStart := time.Now()
	c.reason.Store(closeError) // a close before the handshake is done is a failure
	if err := tc.HandshakeContext(ctx); err != nil {
		kind := dialTLS
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			kind = dialTimeout
			err = fmt.Errorf("TLS handshake not done within connection_timeout (%s): %w", d.net.Timeout, context.DeadlineExceeded)
		}
		c.host.dialFail[kind].Add(1)
		c.closeWith(closeError)
		// A dial error, like a refused connection: nothing was sent.
		return nil, &net.OpError{Op: "dial", Net: network, Addr: c.RemoteAddr(), Err: err}
	}
	c.reason.CompareAndSwap(closeError, closeUnknown)
	c.host.tlsHandshakes.Add(1)
	c.host.tlsNanos.Add(int64(time.Since(hsStart)))
	return tc, nil
}

// errDialNotNeeded ends a dial that no request needs any more. net/http
// drops it: the request it was for was served by a connection that became
// free first.
var errDialNotNeeded = errors.New("warmpool: dial not needed: a connection became free first")

// dialGateMax bounds how long a dial may be held back.
const dialGateMax = 250 * time.Millisecond

// dialNeeded holds a dial back while the requests waiting for a connection
// to h can all be served by idle connections and dials already under way,
// and reports whether the dial should go ahead: true once waiters outnumber
// that supply (or after dialGateMax with no dial under way), false as soon as
// no request waits.
//
// net/http starts a dial for every request that finds no idle connection
// and keeps it going even when another connection frees up first; under a
// burst of N callers that leaves well over N connections (golang/go#66442).
// Holding back the surplus keeps connections close to the concurrency.
//
// probe is true for the one dial allowed while it is not yet known whether
// a TLS server speaks HTTP/2; the caller ends the probe when its dial ends.
func (d *dialer) dialNeeded(ctx context.Context, h *hostPool, useTLS bool) (needed, probe bool) {
	deadline := time.Now().Add(dialGateMax)
	for {
		waiting := h.inflight.Load() - h.holding.Load()
		if waiting <= 0 {
			return false, false
		}
		switch proto := h.proto.Load(); {
		case proto == protoUnknown && (useTLS && d.http2 || !useTLS && d.h2c):
			// A server that may speak HTTP/2 needs one connection for
			// all: until the first handshake tells, one dial at a time.
			if h.probing.CompareAndSwap(false, true) {
				return true, true
			}
		case proto == protoHTTP2:
			// Requests share the open connection; net/http asks for
			// another only when its streams run out (then after the gate
			// time).
			if h.open.Load() == 0 {
				return true, false
			}
		case waiting > h.idleCount()+h.dialing.Load():
			return true, false
		}
		// Dials under way end within connection_timeout and serve a waiter
		// or free a place: wait for them. Waiting on idle connections alone
		// (which net/http should have handed out) is bounded by
		// dialGateMax, in case one is on its way out.
		if time.Now().After(deadline) && h.dialing.Load() == 0 || ctx.Err() != nil || d.closed.Load() {
			return true, false
		}
		time.Sleep(time.Millisecond)
	}
}

// idleCount is the number of open connections serving no request.
func (h *hostPool) idleCount() int64 {
	var n int64
	h.mu.Lock()
	for c := range h.conns {
		if c.inUse.Load() == 0 {
			n++
		}
	}
	h.mu.Unlock()
	return n
}

// Kinds of dial failure, as Stats counts them.
const (
	dialRefused = iota
	dialTimeout
	dialDNS
	dialTLS
	dialOther
	dialKinds
)

func dialKind(err error) int {
	var dns *net.DNSError
	var ne net.Error
	switch {
	case errors.As(err, &dns):
		return dialDNS
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET):
		return dialRefused
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return dialTimeout
	}
	return dialOther
}

// closeAll closes every open connection, idle or not.
func (d *dialer) closeAll(reason int32) {
	for _, h := range d.hostList() {
		h.mu.Lock()
		conns := make([]*conn, 0, len(h.conns))
		for c := range h.conns {
			conns = append(conns, c)
		}
		h.mu.Unlock()
		for _, c := range conns {
			c.closeWith(reason)
		}
	}
}

// conn wraps every dialed connection to count it open until it closes and to
// know whether a request is using it.
type conn struct {
	net.Conn
	host     *hostPool
	born     time.Time
	retireAt int64 // unix nanos after which it is not reused; 0 = never
	hooks    *Hooks

	inUse     atomic.Int32 // requests using it now (HTTP/2 multiplexes)
	idleSince atomic.Int64 // unix nanos when inUse last fell to zero
	reason    atomic.Int32 // why it closed, set before Close
	served    atomic.Bool  // a request has run on it
	retiring  atomic.Bool  // past max_connection_age: closes after its request
	once      sync.Once
}

// Read notes why a connection is about to be closed: EOF means the server
// closed it, another error that it broke.
func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		if err == io.EOF {
			c.reason.CompareAndSwap(closeUnknown, closeServer)
		} else if !errors.Is(err, net.ErrClosed) {
			c.reason.CompareAndSwap(closeUnknown, closeError)
		}
	}
	return n, err
}

// Write refuses to write on a connection warmpool has claimed for closing
// (retired or trimmed). A request net/http handed it in the meantime then
// fails before sending a byte, which net/http retries on another connection
// when the body can be replayed.
func (c *conn) Write(p []byte) (int, error) {
	if c.inUse.Load() < 0 {
		return 0, errConnRetired
	}
	return c.Conn.Write(p)
}

var errConnRetired = fmt.Errorf("warmpool: connection retired: %w", net.ErrClosed)

// retireIfAged closes c if it is past max_connection_age and idle. It is
// called as a request releases c, so an aged connection serves no request
// after the one in flight when it aged.
func (c *conn) retireIfAged(now time.Time) {
	if c.retireAt != 0 && now.UnixNano() >= c.retireAt && c.inUse.CompareAndSwap(0, retiredMark) {
		c.closeWith(closeMaxAge)
	}
}

// Close is called by net/http (idle expiry, server EOF, errors) and by
// warmpool itself; the first reason recorded is kept.
func (c *conn) Close() error {
	if c.reason.Load() == closeUnknown {
		// net/http's idle timer is the only closer that leaves a connection
		// idle for keepalive_expiry; anything else is "other".
		r := closeOther
		switch {
		case c.retiring.Load():
			r = closeMaxAge
		case !c.served.Load():
			r = closeUnused
		case c.inUse.Load() == 0 && time.Since(time.Unix(0, c.idleSince.Load())) >= c.host.idleExpiry*9/10:
			r = closeIdleExpiry
		}
		c.reason.CompareAndSwap(closeUnknown, r)
	}
	var err error
	c.once.Do(func() {
		err = c.Conn.Close()
		h := c.host
		h.mu.Lock()
		delete(h.conns, c)
		h.mu.Unlock()
		h.open.Add(-1)
		r := c.reason.Load()
		h.closed[r].Add(1)
		if f := c.hooks.ConnClosed; f != nil {
			f(c.info(), closeReasonNames[r])
		}
	})
	return err
}

// closeReasonNames are the reasons as Hooks, logs and metrics name them.
var closeReasonNames = [closeReasons]string{"other", "idle_expiry", "max_age", "server", "error", "client", "trim", "other", "unused"}

func (c *conn) info() ConnInfo {
	return ConnInfo{
		Host:       c.host.addr,
		LocalAddr:  c.LocalAddr().String(),
		RemoteAddr: c.RemoteAddr().String(),
		Age:        time.Since(c.born),
	}
}

// retireIdle closes the idle connections past max_connection_age. A
// connection is claimed by moving inUse from 0 to a large negative value, so
// a request that picks it at the same moment sees it closed before writing
// and net/http retries that request on another connection.
func (d *dialer) retireIdle(now time.Time) {
	ns := now.UnixNano()
	for _, h := range d.hostList() {
		var old []*conn
		h.mu.Lock()
		for c := range h.conns {
			if c.retireAt != 0 && ns >= c.retireAt && c.inUse.Load() == 0 {
				old = append(old, c)
			}
		}
		h.mu.Unlock()
		for _, c := range old {
			if c.inUse.CompareAndSwap(0, retiredMark) {
				c.closeWith(closeMaxAge)
			}
		}
	}
}

const retiredMark = -1 << 20

// notePeak records n requests in flight if it is a new peak.
func (h *hostPool) notePeak(n int64) {
	for p := h.peak.Load(); n > p && !h.peak.CompareAndSwap(p, n); p = h.peak.Load() {
	}
	for p := h.peakEver.Load(); n > p && !h.peakEver.CompareAndSwap(p, n); p = h.peakEver.Load() {
	}
}

// trimIdle makes idle retention follow demand: it keeps as many idle
// connections as requests were in flight at the peak of the last
// keepalive_expiry, at least keep, and closes the rest, longest idle first.
// slots is how many ticks make up keepalive_expiry.
func (d *dialer) trimIdle(keep, slots int) {
	for _, h := range d.hostList() {
		h.demand = append(h.demand, h.peak.Swap(h.inflight.Load()))
		if len(h.demand) > slots {
			h.demand = h.demand[len(h.demand)-slots:]
		}
		allowed := int64(keep)
		for _, p := range h.demand {
			allowed = max(allowed, p)
		}
		var idle []*conn
		h.mu.Lock()
		for c := range h.conns {
			if c.inUse.Load() == 0 {
				idle = append(idle, c)
			}
		}
		h.mu.Unlock()
		excess := int64(len(idle)) - allowed
		if excess <= 0 {
			continue
		}
		slices.SortFunc(idle, func(a, b *conn) int { return cmp.Compare(a.idleSince.Load(), b.idleSince.Load()) })
		for _, c := range idle[:excess] {
			if c.inUse.CompareAndSwap(0, retiredMark) {
				c.closeWith(closeTrim)
			}
		}
	}
}

func (c *conn) closeWith(reason int32) {
	c.reason.CompareAndSwap(closeUnknown, reason)
	_ = c.Close()
}

// asConn finds warmpool's wrapper under a connection handed out by net/http.
func asConn(nc net.Conn) *conn {
	switch v := nc.(type) {
	case *conn:
		return v
	case *tls.Conn:
		c, _ := v.NetConn().(*conn)
		return c
	}
	return nil
}

// tlsHandshakeError is a TLS handshake the dialer started that failed for a
// reason other than the certificate: nothing of the request was sent.
type tlsHandshakeError struct{ err error }

func (e *tlsHandshakeError) Error() string { return "TLS handshake: " + e.err.Error() }
func (e *tlsHandshakeError) Unwrap() error { return e.err }
