package warmpool

import (
	"time"
)

// Hooks lets callers feed their own telemetry from pool events, in the
// manner of net/http/httptrace.ClientTrace: every field is optional.
//
// Concurrency: hooks are called synchronously from the goroutines doing the
// work — dials, request goroutines, net/http's connection goroutines and the
// client's janitor — often from many at once. They must be safe for
// concurrent use, return quickly, and not call back into the Client.
type Hooks struct {
	// ConnOpened is called when a connection to host is connected, before
	// any TLS handshake: once for each connection Stats counts as Created,
	// each later closed with one ConnClosed.
	ConnOpened func(ConnInfo)
	// ConnClosed is called once per connection, after it closed; reason is
	// one of CloseReasonNames ("idle_expiry", "server", "learned_idle", …),
	// the names under which HostStats.ClosedBy counts them.
	ConnClosed func(info ConnInfo, reason string)
	// ConnReused is called when a request that was served on a connection
	// that had served an earlier request is done.
	ConnReused func(ConnInfo)
	// WaitStart is called when a request has to wait for a connection
	// because all max_connections to its host are busy.
	WaitStart func(host string)
	// WaitEnd is called when that wait ends: waited is how long it took,
	// err is nil or matches ErrPoolTimeout or the caller's context error.
	WaitEnd func(host string, waited time.Duration, err error)
	// Retry is called before the client waits to retry a request.
	Retry func(RetryInfo)
	// RequestDone is called once per attempt when it is over: after its
	// response body was read to the end or closed, or when it failed.
	RequestDone func(RequestInfo)
}

// RequestInfo describes one finished attempt.
type RequestInfo struct {
	Host string // dialed address, "host:port"; for a balanced host name, the endpoint's "ip:port"
	// HostName is, for an attempt on an endpoint of a balanced host name,
	// that name (as HostStats.HostName); "" otherwise.
	HostName   string
	Method     string
	StatusCode int           // 0 if the attempt got no response
	Duration   time.Duration // from sending until the body was done
	Err        error         // nil if a response arrived (whatever its status)
}

// ConnInfo describes a pooled connection.
type ConnInfo struct {
	Host       string // dialed address, "host:port"
	LocalAddr  string
	RemoteAddr string
	Age        time.Duration // since it was dialed
}

// RetryInfo describes a retry about to happen.
type RetryInfo struct {
	Host       string
	Attempt    int           // the attempt that failed, from 1
	Wait       time.Duration // backoff before the next attempt
	StatusCode int           // of the failed attempt, 0 if it got no response
	Err        error         // of the failed attempt, nil if it got a response
}

// compose returns hooks that call h's hooks, then o's.
func (h Hooks) compose(o Hooks) Hooks {
	return Hooks{
		ConnOpened:  both(h.ConnOpened, o.ConnOpened),
		ConnClosed:  both2(h.ConnClosed, o.ConnClosed),
		ConnReused:  both(h.ConnReused, o.ConnReused),
		WaitStart:   both(h.WaitStart, o.WaitStart),
		WaitEnd:     both3(h.WaitEnd, o.WaitEnd),
		Retry:       both(h.Retry, o.Retry),
		RequestDone: both(h.RequestDone, o.RequestDone),
	}
}

func both[T any](a, b func(T)) func(T) {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	return func(v T) { a(v); b(v) }
}

func both2[T, U any](a, b func(T, U)) func(T, U) {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	return func(v T, w U) { a(v, w); b(v, w) }
}

func both3[T, U, V any](a, b func(T, U, V)) func(T, U, V) {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	return func(v T, w U, x V) { a(v, w, x); b(v, w, x) }
}
