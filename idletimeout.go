package warmpool

import (
	"context"
	"log/slog"
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

// learnedIdle is what a server taught about its idle timeout.
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

// fromClose learns from the server closing a connection that had been idle
// for idle: the server's timeout is at most that. Closes at or past expiry
// (keepalive_expiry) teach nothing. It reports whether the timeout changed.
func (l *learnedIdle) fromClose(idle, expiry time.Duration) bool {
	if idle < minLearnedIdle || idle >= expiry {
		return false
	}
	if cur := time.Duration(l.nanos.Load()); cur != 0 && cur <= idle {
		return false
	}
	return l.set(idle, idleFromClose)
}

// fromHeader honours a Keep-Alive: timeout=N answer header. It reports
// whether the timeout changed.
func (l *learnedIdle) fromHeader(hdr map[string][]string, expiry time.Duration) bool {
	v, ok := hdr["Keep-Alive"]
	if !ok || len(v) == 0 {
		return false
	}
	secs, ok := keepAliveTimeout(v[0])
	if !ok {
		return false
	}
	d := time.Duration(secs) * time.Second
	if d >= expiry {
		d = 0 // keepalive_expiry comes first: nothing to learn
	}
	if time.Duration(l.nanos.Load()) == d {
		return false
	}
	return l.set(d, idleFromHeader)
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

func (l *learnedIdle) set(d time.Duration, src int32) bool {
	old := time.Duration(l.nanos.Swap(int64(d)))
	l.source.Store(src)
	return old != d
}

// get returns the learned timeout (0: none) and where it was learned from.
func (l *learnedIdle) get() (time.Duration, string) {
	return time.Duration(l.nanos.Load()), idleSourceNames[l.source.Load()]
}

// staleAfter is how long a connection may stay idle before warmpool closes
// it ahead of the server: the learned timeout less 10 % or 250 ms, whichever
// is larger (but at least half of it); 0 while none was learned.
func (l *learnedIdle) staleAfter() time.Duration {
	d := time.Duration(l.nanos.Load())
	if d <= 0 {
		return 0
	}
	return max(d-max(d/10, 250*time.Millisecond), d/2)
}

// logFunc adapts a logger to the pools' lifecycle notes.
func logFunc(l *slog.Logger) func(msg string, args ...any) {
	return func(msg string, args ...any) { l.Log(context.Background(), slog.LevelInfo, msg, args...) }
}
