package warmpool

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Servers close connections that stay idle longer than their own idle
// timeout: uvicorn after 5 s, nginx after keepalive_timeout, haproxy after
// timeout http-keep-alive. A client that keeps connections idle longer
// (keepalive_expiry is 30 s) sooner or later sends a request on a connection
// as the server closes it, and a request that is not idempotent then fails,
// as nothing can tell whether the server ran it.
//
// warmpool learns each server's idle timeout, per host: from a
// "Keep-Alive: timeout=N" answer header, or from the idle time of a
// connection the server closed (FIN, RST or HTTP/2 GOAWAY while idle, or as
// a request was sent on it). From then on it closes a connection idle for
// the learned timeout less a margin (10 % or 250 ms, whichever is larger)
// before any request can take it. Closes that are not idle closes (an
// answer's Connection: close, max_connection_age, errors mid-exchange) teach
// nothing; keepalive_expiry stays the upper bound.

// learnedIdle is what a host taught about its idle timeout.
type learnedIdle struct {
	nanos  atomic.Int64 // the learned timeout; 0: none
	source atomic.Int32 // idleFromHeader or idleFromClose
}

const (
	idleFromNone int32 = iota
	idleFromHeader
	idleFromClose
)

var idleSourceNames = [...]string{idleFromNone: "", idleFromHeader: "keep-alive header", idleFromClose: "server close"}

// minLearnedIdle is the shortest idle close taken for an idle timeout: a
// server that closes sooner closes after a number of requests or at once,
// which warmpool does not mistake for an idle timeout.
const minLearnedIdle = 100 * time.Millisecond

// learnFromClose learns from the server closing a connection that had been
// idle for idle: the server's timeout is at most that.
func (h *hostPool) learnFromClose(idle time.Duration) {
	if idle < minLearnedIdle || idle >= h.idleExpiry {
		return
	}
	if cur := time.Duration(h.idle.nanos.Load()); cur != 0 && cur <= idle {
		return
	}
	h.learn(idle, idleFromClose)
}

// learnFromHeader honours a Keep-Alive: timeout=N answer header.
func (h *hostPool) learnFromHeader(hdr http.Header) {
	v, ok := hdr["Keep-Alive"]
	if !ok || len(v) == 0 {
		return
	}
	secs, ok := keepAliveTimeout(v[0])
	if !ok {
		return
	}
	d := time.Duration(secs) * time.Second
	if d >= h.idleExpiry {
		d = 0 // keepalive_expiry comes first: nothing to learn
	}
	if time.Duration(h.idle.nanos.Load()) == d {
		return
	}
	h.learn(d, idleFromHeader)
}

// keepAliveTimeout reads the timeout parameter of a Keep-Alive header value
// such as "timeout=5, max=1000".
func keepAliveTimeout(v string) (int64, bool) {
	for part := range strings.SplitSeq(v, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "timeout") {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
		if err != nil || n < 0 || n > 1<<31 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

func (h *hostPool) learn(d time.Duration, src int32) {
	if !h.d.learnIdle {
		return
	}
	old := time.Duration(h.idle.nanos.Swap(int64(d)))
	h.idle.source.Store(src)
	if old == d {
		return
	}
	if d == 0 {
		h.d.log("warmpool: server idle timeout no longer limits reuse", "host", h.addr)
		return
	}
	h.d.log("warmpool: learned server idle timeout", "host", h.addr, "idle_timeout", d,
		"from", idleSourceNames[src], "close_idle_after", h.staleAfter(), "keepalive_expiry", h.idleExpiry)
	// Connections idle now get their timer too.
	for _, c := range h.connList() {
		if c.inUse.Load() == 0 {
			c.armIdle(max(h.staleAfter()-time.Duration(h.d.now().UnixNano()-c.idleSince.Load()), time.Millisecond))
		}
	}
}

// staleAfter is how long a connection to h may stay idle before warmpool
// closes it ahead of the server: the learned timeout less 10 % or 250 ms,
// whichever is larger (but at least half of it); 0 while none was learned.
func (h *hostPool) staleAfter() time.Duration {
	d := time.Duration(h.idle.nanos.Load())
	if d <= 0 {
		return 0
	}
	return max(d-max(d/10, 250*time.Millisecond), d/2)
}

// logFunc adapts a logger to the dialer's lifecycle notes.
func logFunc(l *slog.Logger) func(msg string, args ...any) {
	return func(msg string, args ...any) { l.Log(context.Background(), slog.LevelInfo, msg, args...) }
}
