package bench

import (
	"context"
	"crypto/tls"
	"net/http/httptrace"
	"sync/atomic"
	"time"
)

// phases totals, over one run, the time spent in connection setup, the way
// rakyll/hey splits a request into phases. The hooks of a request can fire
// after it has finished, on net/http's dialing goroutine (a dial started for
// a request that was then served by another connection completes anyway), so
// the totals are atomics that every hook adds to directly: each dial and
// handshake is counted once, whichever request it ends up serving.
type phases struct {
	epoch      time.Time // monotonic reference for the per-request start marks
	dialNanos  atomic.Int64
	dials      atomic.Int64
	tlsNanos   atomic.Int64
	handshakes atomic.Int64
}

func newPhases() *phases { return &phases{epoch: time.Now()} }

func (p *phases) now() int64 { return int64(time.Since(p.epoch)) }

// requestTrace follows one request. Its fields are written by hooks that may
// run on other goroutines, hence atomics.
type requestTrace struct {
	p         *phases
	dialStart atomic.Int64
	tlsStart  atomic.Int64
	gotConn   atomic.Bool
	reused    atomic.Bool
}

// withTrace returns ctx carrying a fresh requestTrace's hooks. When the
// client adds hooks of its own (warmpool does, to account connections),
// net/http calls both.
func (p *phases) withTrace(ctx context.Context) (context.Context, *requestTrace) {
	t := &requestTrace{p: p}
	ct := &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			t.reused.Store(info.Reused)
			t.gotConn.Store(true)
		},
		ConnectStart: func(string, string) { t.dialStart.Store(p.now()) },
		ConnectDone: func(_, _ string, err error) {
			if err == nil {
				p.dialNanos.Add(p.now() - t.dialStart.Load())
				p.dials.Add(1)
			}
		},
		TLSHandshakeStart: func() { t.tlsStart.Store(p.now()) },
		TLSHandshakeDone: func(_ tls.ConnectionState, err error) {
			if err == nil {
				p.tlsNanos.Add(p.now() - t.tlsStart.Load())
				p.handshakes.Add(1)
			}
		},
	}
	return httptrace.WithClientTrace(ctx, ct), t
}
