package warmpool

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"
)

// dialer opens every connection the transport uses, for the pool it is
// dialed for, and hands it to that pool to track: the pools are the only
// source of truth for connection counts, as net/http keeps none that can be
// read.
//
// It does the TLS handshake itself (DialTLSContext) rather than leaving it to
// net/http, for three reasons that net/http's own handshake cannot serve:
// handshakes and their failures are counted per pool, the negotiated
// protocol is known as the connection opens (the HTTP/2 dial gate needs it),
// and the TCP connect and the handshake share one connection_timeout.
type dialer struct {
	net    net.Dialer
	tls    *tls.Config // for DialTLSContext; NextProtos set from the protocols
	h2c    bool        // plain connections speak HTTP/2 by prior knowledge
	pools  *poolSet
	closed atomic.Bool
}

// newDialer makes the dialer of a client made from cfg.
func newDialer(cfg Config, tlsCfg *tls.Config, pools *poolSet) *dialer {
	return &dialer{
		net: net.Dialer{
			Timeout: cfg.ConnectionTimeout,
			// TCP keepalive probes find a half-open connection within
			// about connection_timeout (idle/2 + 3 probes of idle/6).
			KeepAliveConfig: net.KeepAliveConfig{
				Enable: true, Idle: max(cfg.ConnectionTimeout/2, time.Second),
				Interval: max(cfg.ConnectionTimeout/6, time.Second), Count: 3,
			},
		},
		tls:   tlsCfg,
		h2c:   cfg.H2C,
		pools: pools,
	}
}

// DialContext is the transport's dial function for http:// targets.
func (d *dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return d.dialTo(ctx, network, d.pools.get(addr, ""), addr, "", false)
}

// DialTLSContext dials https:// targets and completes the TLS handshake.
func (d *dialer) DialTLSContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return d.dialTo(ctx, network, d.pools.get(addr, ""), addr, "", true)
}

// dialTo dials addr for p. serverName is the TLS server name; "" takes it
// from addr. An endpoint of a balanced host name dials its IP address with
// the host name as server name, so certificates are checked against the name.
func (d *dialer) dialTo(ctx context.Context, network string, p *pool, addr, serverName string, useTLS bool) (_ net.Conn, err error) {
	if d.closed.Load() {
		return nil, ErrClosed
	}
	p.announceReplacement()
	// connection_timeout bounds everything from here: the wait at the
	// gate, the TCP connect and the TLS handshake.
	ctx, cancel := context.WithTimeout(ctx, d.net.Timeout)
	defer cancel()
	release, err := p.admitDial(ctx, wantFrom(ctx))
	if err != nil {
		if !errors.Is(err, ErrPoolTimeout) && errors.Is(err, context.DeadlineExceeded) {
			p.noteDial(0, context.DeadlineExceeded)
			err = fmt.Errorf("no connection within connection_timeout (%s): %w", d.net.Timeout, err)
		}
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	defer func() { release(err == nil) }()
	p.dialing.Add(1)
	defer p.dialing.Add(-1)
	connectStart := p.env.now()
	nc, err := d.net.DialContext(ctx, network, addr)
	if err != nil {
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			// net.Dialer says "i/o timeout" (its deadline, connection_
			// timeout's, may fire a moment before the context's): say which
			// setting ran out, and match context.DeadlineExceeded like every
			// other deadline.
			err = &net.OpError{Op: "dial", Net: network, Err: fmt.Errorf("no connection within connection_timeout (%s): %w (%w)", d.net.Timeout, context.DeadlineExceeded, err)}
		}
		p.noteDial(0, err)
		return nil, err
	}
	p.noteDial(p.env.now().Sub(connectStart), nil)
	c := p.track(nc)
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
	p.proto.Store(proto)
	c.h2.Store(proto == protoHTTP2)
	c.tls.Store(useTLS)
	if d.closed.Load() { // Close ran while we dialed
		c.closeWith(closeClient)
		return nil, ErrClosed
	}
	return out, nil
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
	hsStart := c.pool.env.now()
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
		c.pool.noteDialFailure(kind)
		c.failed.Store(true)
		c.closeWith(closeError)
		// A dial error, like a refused connection: nothing was sent.
		return nil, &net.OpError{Op: "dial", Net: network, Addr: c.RemoteAddr(), Err: err}
	}
	c.reason.CompareAndSwap(int32(closeError), int32(closeUnknown))
	c.pool.noteHandshake(c.pool.env.now().Sub(hsStart))
	return tc, nil
}
