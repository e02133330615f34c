package bench

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/load"
)

// callClass is what became of one call.
type callClass uint8

const (
	classOK       callClass = iota // answered 2xx within the caller's deadline
	classOKLate                    // answered 2xx after it
	classFastFail                  // failed by the client at once, not sent
	classFailed                    // any other failure, a non-2xx answer included
	classCut                       // ended by the end of the run
)

// callRec is one call of a scenario run; times are from the run's start.
type callRec struct {
	phase  int
	due    time.Duration
	end    time.Duration
	own    time.Duration // from its start to its end
	class  callClass
	kind   string // the error's warmpool.ErrorKind, or the fast fail's reason
	server int    // the endpoint that answered (index); -1: none
}

// latency is the call's time from when it was due, as load.Record.Latency.
func (c callRec) latency() time.Duration { return c.end - c.due }

// Fast fail reasons: how the client refused to send a call.
const (
	reasonOverloaded  = "overloaded"   // ErrOverloaded: the concurrency limit
	reasonThrottled   = "throttled"    // ErrOverloaded: client-side throttling
	reasonCircuitOpen = "circuit_open" // ErrCircuitOpen
	reasonDeadline    = "deadline"     // less time left than the fastest answer took
)

// notSentError marks the error of a call the client failed without sending
// it, with the reason.
type notSentError struct {
	reason string
	err    error
}

func (e *notSentError) Error() string { return e.err.Error() }
func (e *notSentError) Unwrap() error { return e.err }

// notSent wraps err in a *notSentError if the client failed the call at
// once without sending it: ErrOverloaded, ErrCircuitOpen, or a deadline
// error while the caller's context still had time (warmpool's
// deadline-aware admission) and before the call asked for a connection.
func notSent(ctx context.Context, err error, askedForConn bool) error {
	var oe *warmpool.OverloadError
	switch {
	case errors.As(err, &oe) && oe.Throttled:
		return &notSentError{reasonThrottled, err}
	case errors.Is(err, warmpool.ErrOverloaded):
		return &notSentError{reasonOverloaded, err}
	case errors.Is(err, warmpool.ErrCircuitOpen):
		return &notSentError{reasonCircuitOpen, err}
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil && !askedForConn:
		return &notSentError{reasonDeadline, err}
	}
	return err
}

// callTally collects the calls of one mode's run.
type callTally struct {
	t0          time.Time
	callTimeout time.Duration
	mu          sync.Mutex
	recs        []callRec
	samples     []string // the first distinct error messages
}

// observe returns the load.Run observer of phase, which reads the endpoint
// that answered each call from served, by worker.
func (t *callTally) observe(phase int, served []int) func(load.Record) {
	return func(r load.Record) {
		c := callRec{phase: phase, due: r.Due.Sub(t.t0), end: r.End.Sub(t.t0), own: r.End.Sub(r.Start), server: served[r.Worker]}
		var ns *notSentError
		switch {
		case r.Cut:
			c.class = classCut
		case errors.As(r.Err, &ns):
			c.class, c.kind = classFastFail, ns.reason
		case r.Err != nil:
			c.class, c.kind = classFailed, warmpool.ErrorKind(r.Err)
		case r.Status < 200 || r.Status > 299:
			c.class, c.kind = classFailed, "status"
		case r.End.After(r.Start.Add(t.callTimeout)):
			c.class = classOKLate
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		t.recs = append(t.recs, c)
		if c.class == classFailed && r.Err != nil && len(t.samples) < 5 {
			if msg := c.kind + ": " + r.Err.Error(); !slices.Contains(t.samples, msg) {
				t.samples = append(t.samples, msg)
			}
		}
	}
}

// calls returns the calls recorded, in no order; keep selects them.
func (t *callTally) calls(keep func(callRec) bool) []callRec {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []callRec
	for _, c := range t.recs {
		if keep(c) {
			out = append(out, c)
		}
	}
	return out
}

// summarizeCalls fills in what calls did into p, over p.DurationS seconds
// at capacity per second.
func summarizeCalls(p *PhaseResult, calls []callRec, capacity float64) {
	ok, fast, failed := newHistogram(), newHistogram(), newHistogram()
	var okMax, fastMax, failedMax time.Duration
	kinds := map[string]int64{}
	p.FastFails.ByReason = map[string]int64{}
	for _, c := range calls {
		switch c.class {
		case classOK:
			p.OK++
			ok.RecordValue(toMicros(c.latency()))
			okMax = max(okMax, c.latency())
		case classOKLate:
			p.OKLate++
		case classFastFail:
			p.FastFails.Count++
			p.FastFails.ByReason[c.kind]++
			fast.RecordValue(toMicros(c.own))
			fastMax = max(fastMax, c.own)
			if c.own < time.Millisecond {
				p.FastFails.Under1ms++
			}
		case classFailed:
			kinds[c.kind]++
			failed.RecordValue(toMicros(c.own))
			failedMax = max(failedMax, c.own)
		case classCut:
			p.Cut++
		}
	}
	p.Calls += int64(len(calls))
	p.Errors = NewErrorCounts(kinds)
	p.Latency = percentiles(ok, okMax)
	p.FastFails.Latency = percentiles(fast, fastMax)
	p.ErrorLatency = percentiles(failed, failedMax)
	if p.DurationS > 0 {
		p.GoodputPerS = round3(float64(p.OK) / p.DurationS)
	}
	if capacity > 0 {
		p.GoodputOfCapacity = round3(p.GoodputPerS / capacity)
	}
}

// percentiles reads h, whose exact maximum is hi.
func percentiles(h *hdrhistogram.Histogram, hi time.Duration) Percentiles {
	if h.TotalCount() == 0 {
		return Percentiles{}
	}
	top := toMicros(hi)
	return Percentiles{
		Count: h.TotalCount(),
		P50:   min(h.ValueAtQuantile(50), top),
		P99:   min(h.ValueAtQuantile(99), top),
		P999:  min(h.ValueAtQuantile(99.9), top),
		Max:   top,
	}
}
