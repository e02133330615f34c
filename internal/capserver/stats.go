package capserver

import (
	"sync"
	"sync/atomic"
)

// Stats is what the server has seen, by its own counts.
type Stats struct {
	Received int64 // requests read (every method and path)
	// Executed counts executions that ended; Wasted those of them that
	// started after their caller's deadline (X-Bench-Deadline): work for a
	// caller that had already given up. Slow counts those that took
	// Options.SlowDelay.
	Executed int64
	Wasted   int64
	Slow     int64
	// ClientGone counts requests whose client had gone (its connection
	// closed, or the request was cancelled) before the answer: their work
	// ran all the same, or is still queued.
	ClientGone int64
	// Unexecuted counts requests still queued when the server closed.
	Unexecuted int64
	// Executing and Queued are the executions under way and the requests
	// waiting for a slot now (while hanging, every request received since);
	// the peaks are the most seen at once.
	Executing     int64
	Queued        int64
	PeakExecuting int64
	PeakQueued    int64
	Hanging       bool
	// ByTag splits Received, Executed and Wasted by the requests'
	// X-Bench-Tag ("" for none).
	ByTag map[string]TagStats
}

// TagStats are the counts of the requests of one X-Bench-Tag.
type TagStats struct {
	Received int64
	Executed int64
	Wasted   int64
}

// counters are the server's counts, updated as requests come and go.
type counters struct {
	received, executed, wasted, slow atomic.Int64
	clientGone, unexecuted           atomic.Int64
	executing, queued                atomic.Int64
	peakExecuting, peakQueued        atomic.Int64

	mu    sync.Mutex
	byTag map[string]*TagStats // guarded by mu
}

// tagged runs f on the counts of tag, under the lock.
func (c *counters) tagged(tag string, f func(*TagStats)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byTag == nil {
		c.byTag = map[string]*TagStats{}
	}
	t := c.byTag[tag]
	if t == nil {
		t = &TagStats{}
		c.byTag[tag] = t
	}
	f(t)
}

// arrived counts a request read, queued, and returns its arrival index.
func (c *counters) arrived(tag string) int64 {
	c.tagged(tag, func(t *TagStats) { t.Received++ })
	storeMax(&c.peakQueued, c.queued.Add(1))
	return c.received.Add(1) - 1
}

// started moves a job from the queue to a slot; wasted says it started
// past its caller's deadline.
func (c *counters) started(tag string, wasted bool) {
	c.queued.Add(-1)
	storeMax(&c.peakExecuting, c.executing.Add(1))
	if wasted {
		c.wasted.Add(1)
		c.tagged(tag, func(t *TagStats) { t.Wasted++ })
	}
}

// ended counts an execution that ended.
func (c *counters) ended(tag string, slow bool) {
	if slow {
		c.slow.Add(1)
	}
	c.tagged(tag, func(t *TagStats) { t.Executed++ })
	c.executed.Add(1)
	c.executing.Add(-1)
}

func (c *counters) snapshot() Stats {
	s := Stats{
		Received: c.received.Load(), Executed: c.executed.Load(), Wasted: c.wasted.Load(), Slow: c.slow.Load(),
		ClientGone: c.clientGone.Load(), Unexecuted: c.unexecuted.Load(),
		Executing: c.executing.Load(), Queued: c.queued.Load(),
		PeakExecuting: c.peakExecuting.Load(), PeakQueued: c.peakQueued.Load(),
		ByTag: map[string]TagStats{},
	}
	c.mu.Lock()
	for k, t := range c.byTag {
		s.ByTag[k] = *t
	}
	c.mu.Unlock()
	return s
}

// storeMax raises v to n if n is larger.
func storeMax(v *atomic.Int64, n int64) {
	for p := v.Load(); n > p && !v.CompareAndSwap(p, n); p = v.Load() {
	}
}
