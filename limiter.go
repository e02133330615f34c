package warmpool

import (
	"context"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// limiter caps the attempts in flight to one pool (concurrency_limit): a
// fixed number, or a limit that follows the server's latency. An attempt over
// the limit waits up to limit_queue_timeout for one to end (first come,
// first served), then fails with ErrOverloaded, not sent.
//
// The adaptive limit is a gradient against the lowest recent latency, after
// Netflix concurrency-limits' Gradient2 and Envoy's adaptive concurrency
// filter. Every limitInterval it compares the interval's mean latency
// (successes only, to the end of the body) with the minimum of the last
// 15–30 s (health.lat):
//
//	gradient = clamp(limitTolerance × min / mean, 0.5, 1)
//	target   = limit × gradient + √limit
//	limit    = limit × (1 − limitSmoothing) + target × limitSmoothing
//
// While latency stays within limitTolerance of the minimum the limit grows
// by about √limit per interval (the server has room); as a queue builds at
// the server the mean rises and the limit falls to about what the server
// serves at once, plus a small queue. An interval with a drop (429, 503, a
// timeout, or a caller's deadline passing in flight) cuts the limit by
// limitBackoff, as AIMD and Vegas do. The limit does not grow while the
// attempts in flight stay under half of it (the load, not the server, is the
// bound), and it stays within [limitMin, limitMax].
type limiter struct {
	adaptive     bool
	limit        atomic.Int64 // attempts admitted at once; 0: no limit
	queueTimeout time.Duration

	mu      sync.Mutex
	est     float64        // the adaptive estimate; guarded by mu
	waiters []*limitWaiter // first come, first served; guarded by mu
	queued  atomic.Int64   // len(waiters)

	lastUpdate atomic.Int64 // unix nanos of the last adaptive update
	rejected   atomic.Int64
	waits      atomic.Int64
	waitNs     atomic.Int64
}

type limitWaiter struct {
	ready chan struct{} // closed when a slot was handed over
}

const (
	limitInitial    = 40
	limitMin        = 4
	limitMax        = 1000
	limitTolerance  = 1.5
	limitSmoothing  = 0.2
	limitBackoff    = 0.9
	limitInterval   = 100 * time.Millisecond
	limitMinSamples = 5
)

// Values of concurrency_limit besides a number.
const (
	concurrencyOff      = "off"
	concurrencyAdaptive = "adaptive"
)

// parseConcurrencyLimit reads concurrency_limit: "" or "off" (no limit),
// "adaptive", or a number ≥ 1.
func parseConcurrencyLimit(v string) (adaptive bool, fixed int, ok bool) {
	switch v {
	case "", concurrencyOff:
		return false, 0, true
	case concurrencyAdaptive:
		return true, 0, true
	}
	n, err := strconv.Atoi(v)
	return false, n, err == nil && n >= 1
}

// init sets the limiter up from concurrency_limit and limit_queue_timeout.
func (l *limiter) init(cfg string, queueTimeout time.Duration) {
	adaptive, fixed, _ := parseConcurrencyLimit(cfg)
	l.adaptive, l.queueTimeout = adaptive, queueTimeout
	if adaptive {
		l.est = limitInitial
		l.limit.Store(limitInitial)
	} else {
		l.limit.Store(int64(fixed))
	}
}

// admit takes a place among inflight's attempts, waiting up to
// limit_queue_timeout (or less, if ctx ends first) when it is at the limit.
// It returns the error to fail the attempt with, or nil once counted.
func (l *limiter) admit(ctx context.Context, inflight *atomic.Int64, addr string, now func() time.Time) error {
	lim := l.limit.Load()
	if lim == 0 {
		inflight.Add(1)
		return nil
	}
	if l.queued.Load() == 0 {
		for n := inflight.Load(); n < lim; n = inflight.Load() {
			if inflight.CompareAndSwap(n, n+1) {
				return nil
			}
		}
	}
	if l.queueTimeout <= 0 {
		l.rejected.Add(1)
		return &OverloadError{Host: addr, Limit: int(lim), InFlight: int(inflight.Load())}
	}
	return l.wait(ctx, inflight, addr, now)
}

// wait queues for a place; a release hands it over.
func (l *limiter) wait(ctx context.Context, inflight *atomic.Int64, addr string, now func() time.Time) error {
	start := now()
	w := &limitWaiter{ready: make(chan struct{})}
	l.mu.Lock()
	if n := inflight.Load(); n < l.limit.Load() && len(l.waiters) == 0 {
		inflight.Add(1) // room came while we took the lock
		l.mu.Unlock()
		return nil
	}
	l.waiters = append(l.waiters, w)
	l.queued.Add(1)
	l.mu.Unlock()
	t := time.NewTimer(l.queueTimeout)
	defer t.Stop()
	var err error
	select {
	case <-w.ready:
	case <-t.C:
	case <-ctx.Done():
		err = context.Cause(ctx)
	}
	waited := now().Sub(start)
	l.waits.Add(1)
	l.waitNs.Add(int64(waited))
	l.mu.Lock()
	handed := true
	for i, o := range l.waiters {
		if o == w {
			l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
			l.queued.Add(-1)
			handed = false
			break
		}
	}
	l.mu.Unlock()
	if handed {
		return nil // the place was ours before the timer or the context won
	}
	if err != nil {
		return err
	}
	l.rejected.Add(1)
	return &OverloadError{Host: addr, Limit: int(l.limit.Load()), InFlight: int(inflight.Load()), Waited: waited}
}

// release ends an attempt's place: handed to the first waiter if any, else
// given back.
func (l *limiter) release(inflight *atomic.Int64) {
	if l.queued.Load() > 0 {
		l.mu.Lock()
		if len(l.waiters) > 0 && inflight.Load() <= l.limit.Load() {
			w := l.waiters[0]
			l.waiters = l.waiters[1:]
			l.queued.Add(-1)
			l.mu.Unlock()
			close(w.ready) // the place passes on: inflight stays as it is
			return
		}
		l.mu.Unlock()
	}
	inflight.Add(-1)
}

// update moves the adaptive limit once per limitInterval, from what h
// measured over the interval. It is called as attempts end; one caller at a
// time does the work.
func (l *limiter) update(h *health, inflight int64, now time.Time) {
	if !l.adaptive {
		return
	}
	last := l.lastUpdate.Load()
	ns := now.UnixNano()
	if ns-last < int64(limitInterval) || h.ivCount.Load() < limitMinSamples && h.ivDrops.Load() == 0 ||
		!l.lastUpdate.CompareAndSwap(last, ns) {
		return
	}
	sum, n := h.ivSum.Swap(0), h.ivCount.Swap(0)
	drops, peak := h.ivDrops.Swap(0), h.ivPeak.Swap(inflight)
	minLat := h.lat.min(now)
	l.mu.Lock()
	est := l.est
	switch {
	case drops > 0:
		est *= limitBackoff
	case n > 0 && minLat > 0:
		mean := float64(sum) / float64(n)
		gradient := max(0.5, min(1, limitTolerance*float64(minLat)/mean))
		target := est*gradient + math.Sqrt(est)
		if float64(peak) < est/2 {
			target = min(target, est) // the load is the bound, not the server
		}
		est = est*(1-limitSmoothing) + target*limitSmoothing
	}
	est = max(limitMin, min(limitMax, est))
	l.est = est
	l.limit.Store(int64(est))
	l.mu.Unlock()
}
