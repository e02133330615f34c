package warmpool

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// conn wraps every dialed connection to count it open until it closes, to
// know whether a request is using it, and to see how it ends.
type conn struct {
	net.Conn
	pool     *pool
	born     time.Time
	retireAt int64 // unix nanos after which it is not reused; 0 = never

	inUse     atomic.Int32 // requests using it now (HTTP/2 multiplexes); negative once claimed for closing
	idleSince atomic.Int64 // unix nanos when inUse last fell to zero
	lastIdle  atomic.Int64 // how long it had been idle when last taken, nanos
	reason    atomic.Int32 // why it closed (a closeReason), set before Close
	served    atomic.Bool  // a request counted in Stats ran on it
	failed    atomic.Bool  // its dial failed (TLS handshake): a dial failure, not an unused connection
	idleRead  atomic.Int64 // unix nanos of the last read while idle (an HTTP/2 GOAWAY or PING, a TLS close_notify)
	idleRead0 atomic.Int64 // the read while idle before that one
	tls       atomic.Bool  // under TLS: the last read before EOF may be the server's close_notify
	stale     atomic.Bool  // taken after the server's learned idle timeout: write nothing on it
	retiring  atomic.Bool  // past max_connection_age: closes after its request
	announced atomic.Bool  // its end was announced (Connection: close), or it was replaced: its close teaches no idle timeout
	h2        atomic.Bool  // speaks HTTP/2
	// readInUse is whether a byte was read since a request last took it:
	// a connection that breaks before that was closed by the server while
	// idle, even if a request had just been sent on it.
	readInUse atomic.Bool
	idleTimer *time.Timer // closes it just before the server's learned idle timeout; guarded by once-set in armIdle
	timerMu   sync.Mutex
	once      sync.Once
}

// Read notes how a connection ends: EOF means the server closed it; a reset
// while idle (or before any answer to the request just sent) too; another
// error that it broke.
func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		if c.inUse.Load() == 0 {
			// Over HTTP/2 the last frame read while idle before the server
			// closes is its GOAWAY: the moment of the idle close (under
			// TLS, one read before the close_notify).
			c.idleRead0.Store(c.idleRead.Load())
			c.idleRead.Store(c.pool.env.now().UnixNano())
		} else if !c.readInUse.Load() {
			c.readInUse.Store(true)
		}
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		c.readFailed(err)
	}
	return n, err
}

// readFailed records why the connection is about to close and, for a close
// by the server of an idle connection, how long it had been idle.
func (c *conn) readFailed(err error) {
	var idle time.Duration // how long the server let it sit idle before closing it
	wasIdle := true
	switch {
	case c.inUse.Load() == 0:
		idle = time.Duration(c.idleUntil(c.pool.env.now().UnixNano()) - c.idleSince.Load())
	case !c.readInUse.Load() && c.served.Load():
		// Taken from the pool and sent on as the server closed it. (The
		// server's idle time began before ours, when it wrote its last
		// answer, so ours may be short of its timeout: only closes idle
		// long enough teach it, see learnFromClose.)
		idle = time.Duration(c.lastIdle.Load())
	default:
		wasIdle = false
	}
	if err == io.EOF || wasIdle && errors.Is(err, syscall.ECONNRESET) {
		c.reason.CompareAndSwap(int32(closeUnknown), int32(closeServer))
	} else {
		c.reason.CompareAndSwap(int32(closeUnknown), int32(closeError))
	}
	if wasIdle && c.served.Load() && !c.announced.Load() {
		c.pool.learnFromClose(idle)
	}
}

// Write refuses to write on a connection warmpool has claimed for closing
// (retired, trimmed, or about to reach the server's idle timeout). A request
// net/http handed it in the meantime then fails before sending a byte, which
// net/http retries on another connection when the body can be replayed.
func (c *conn) Write(p []byte) (int, error) {
	if c.inUse.Load() < 0 || c.stale.Load() {
		return 0, errConnRetired
	}
	return c.Conn.Write(p)
}

var errConnRetired = fmt.Errorf("warmpool: connection retired: %w", net.ErrClosed)

const retiredMark = -1 << 20

// idleUntil is when c's idle time ended as the server saw it: over HTTP/2
// the last frame read while idle (its GOAWAY; under TLS the read before the
// close_notify that follows it), else now, when the close is seen.
func (c *conn) idleUntil(now int64) int64 {
	since := c.idleSince.Load()
	if !c.h2.Load() {
		return now
	}
	if r := c.idleRead0.Load(); c.tls.Load() && r > since {
		return r
	}
	if r := c.idleRead.Load(); r > since {
		return r
	}
	return now
}

// take marks c in use by one more request and reports whether it had served
// a request before.
func (c *conn) take(now time.Time) (reused bool) {
	if c.inUse.Add(1) == 1 {
		c.lastIdle.Store(now.UnixNano() - c.idleSince.Load())
		c.readInUse.Store(false)
	}
	return c.served.Load()
}

// release gives back one request's hold on c; the last one out starts its
// idle time.
func (c *conn) release(now time.Time) {
	if c.inUse.Add(-1) != 0 {
		return
	}
	c.idleSince.Store(now.UnixNano())
	if c.retireIfAged(now) {
		return
	}
	c.armIdle(c.pool.idle.staleAfter())
}

// claim takes an idle c for closing, so that no request can start on it.
func (c *conn) claim() bool { return c.inUse.CompareAndSwap(0, retiredMark) }

// retireIfAged closes c if it is past max_connection_age and idle. It is
// called as a request releases c, so an aged connection serves no request
// after the one in flight when it aged.
func (c *conn) retireIfAged(now time.Time) bool {
	if c.retireAt != 0 && now.UnixNano() >= c.retireAt && c.claim() {
		c.closeWith(closeMaxAge)
		return true
	}
	return false
}

// armIdle closes c once it has been idle for d, unless a request takes it
// first. d is 0 while no idle timeout was learned for its server.
func (c *conn) armIdle(d time.Duration) {
	if d <= 0 {
		return
	}
	c.timerMu.Lock()
	defer c.timerMu.Unlock()
	if c.idleTimer == nil {
		c.idleTimer = time.AfterFunc(d, c.idleTimerFired)
		return
	}
	c.idleTimer.Reset(d)
}

// idleTimerFired closes c if it is still idle and has been for as long as the
// learned idle timeout allows; if a request used it since, it waits again.
func (c *conn) idleTimerFired() {
	d := c.pool.idle.staleAfter()
	if d <= 0 || c.inUse.Load() != 0 {
		return
	}
	idle := time.Duration(c.pool.env.now().UnixNano() - c.idleSince.Load())
	if idle < d {
		c.armIdle(d - idle)
		return
	}
	if c.claim() {
		c.closeWith(closeLearnedIdle)
	}
}

// Close is called by net/http (idle expiry, server EOF, errors) and by
// warmpool itself; the first reason recorded is kept, except that a
// connection that never served a request counted in Stats, serves none now,
// and whose dial did not fail, is unused, whoever closed it: so Stats.Reused
// is always Requests − (Created − ClosedBy.Unused − open unused ones).
func (c *conn) Close() error {
	if !c.served.Load() && !c.failed.Load() && c.inUse.Load() <= 0 {
		c.reason.Store(int32(closeUnused))
	} else if c.reason.Load() == int32(closeUnknown) {
		c.reason.CompareAndSwap(int32(closeUnknown), int32(c.guessReason()))
	}
	var err error
	c.once.Do(func() {
		err = c.Conn.Close()
		c.timerMu.Lock()
		if c.idleTimer != nil {
			c.idleTimer.Stop()
		}
		c.timerMu.Unlock()
		c.pool.noteClose(c, closeReason(c.reason.Load()))
	})
	return err
}

// guessReason names why net/http closes c when nothing recorded a reason.
func (c *conn) guessReason() closeReason {
	if c.retiring.Load() {
		return closeMaxAge
	}
	if c.inUse.Load() != 0 {
		return closeOther
	}
	now := c.pool.env.now().UnixNano()
	idle := time.Duration(now - c.idleSince.Load())
	switch {
	case idle >= c.pool.env.idleExpiry/2:
		// net/http's idle timer is the only closer of an HTTP/1.1
		// connection that has been idle this long (its idle time starts a
		// moment before ours, which a loaded machine stretches).
		return closeIdleExpiry
	case c.h2.Load():
		// net/http's HTTP/2 client closes an idle connection before
		// keepalive_expiry only when the server sent GOAWAY: a server close,
		// and an idle timeout unless the connection was already being
		// replaced (see pool.announceReplacement).
		if !c.announced.Load() {
			c.pool.learnFromClose(time.Duration(c.idleUntil(now) - c.idleSince.Load()))
		}
		return closeServer
	}
	return closeOther
}

func (c *conn) closeWith(reason closeReason) {
	c.reason.CompareAndSwap(int32(closeUnknown), int32(reason))
	_ = c.Close()
}

func (c *conn) info() ConnInfo {
	return ConnInfo{
		Host:       c.pool.addr,
		LocalAddr:  c.LocalAddr().String(),
		RemoteAddr: c.RemoteAddr().String(),
		Age:        c.pool.env.now().Sub(c.born),
	}
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
