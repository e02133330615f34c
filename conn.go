package warmpool

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
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
	closeReasons
)

// dialer opens and accounts every connection the transport uses. It is the
// only source of truth for connection counts: net/http itself keeps none that
// can be read.
type dialer struct {
	net        net.Dialer
	now        func() time.Time
	idleExpiry time.Duration
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

	inflight     atomic.Int64 // requests between RoundTrip and body close
	requests     atomic.Int64 // requests that got a connection
	reused       atomic.Int64 // of those, on a connection that served before
	poolTimeouts atomic.Int64

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
	h := &hostPool{addr: addr, idleExpiry: d.idleExpiry, conns: make(map[*conn]struct{})}
	d.hosts.Store(addr, h)
	d.list = append(d.list, h)
	return h
}

func (d *dialer) hostList() []*hostPool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*hostPool(nil), d.list...)
}

// DialContext is the transport's dial function.
func (d *dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if d.closed.Load() {
		return nil, ErrClosed
	}
	h := d.host(addr)
	h.dialing.Add(1)
	nc, err := d.net.DialContext(ctx, network, addr)
	h.dialing.Add(-1)
	if err != nil {
		return nil, err
	}
	now := d.now()
	c := &conn{Conn: nc, host: h, born: now}
	c.idleSince.Store(now.UnixNano())
	h.mu.Lock()
	h.conns[c] = struct{}{}
	h.mu.Unlock()
	h.open.Add(1)
	h.created.Add(1)
	if d.closed.Load() { // Close ran while we dialed
		c.closeWith(closeClient)
		return nil, ErrClosed
	}
	return c, nil
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
	host *hostPool
	born time.Time

	inUse     atomic.Int32 // requests using it now (HTTP/2 multiplexes)
	idleSince atomic.Int64 // unix nanos when inUse last fell to zero
	reason    atomic.Int32 // why it closed, set before Close
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

// Close is called by net/http (idle expiry, server EOF, errors) and by
// warmpool itself; the first reason recorded is kept.
func (c *conn) Close() error {
	if c.reason.Load() == closeUnknown {
		// net/http's idle timer is the only closer that leaves a connection
		// idle for keepalive_expiry; anything else is "other".
		r := closeOther
		if c.inUse.Load() == 0 && time.Since(time.Unix(0, c.idleSince.Load())) >= c.host.idleExpiry*9/10 {
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
		h.closed[c.reason.Load()].Add(1)
	})
	return err
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
