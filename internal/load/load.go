// Package load is the one load loop of warmpool's tooling: "warmpool post
// -n", "warmpool doctor" and "warmpool bench" (fleet runs included) all make
// their calls through Run, and the tests that need traffic do too.
//
// A run calls one function over and over, in one of two models:
//
//   - closed: Spec.Workers workers, each making its next call when its last
//     returned (and, with Spec.Pause, after a pause);
//   - open: calls due at a fixed Spec.Rate from the start, whatever happened
//     to earlier ones, made by at most Spec.Workers at once. A call's
//     latency runs from when it was due (Record.Latency), so a server that
//     slows down shows it in the latency rather than in calls never made
//     (coordinated omission, as vegeta avoids it). When every worker is busy
//     a due call waits for one, and starts late (Summary.Late); with
//     Spec.DropWhenFull it is dropped instead (Summary.Dropped), so that
//     slow calls never hold back the schedule.
//
// Every run is bounded in time, and optionally in count: no call starts
// after Spec.Duration, nor past Spec.Requests calls, nor once the context
// ends. Calls still running at the end get Spec.Grace, then their context is
// cancelled; Record.Cut tells such calls apart. Run returns only when every
// call it started has returned, and leaves no goroutine behind.
package load

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Spec says how a run loads, and when it stops.
type Spec struct {
	// Workers is the number of workers of the closed model, or the cap on
	// calls in flight of the open model. At least 1.
	Workers int
	// Rate is the open model's calls per second, from the start; 0 selects
	// the closed model.
	Rate float64
	// Duration bounds the run: no call starts after start+Duration. It must
	// be positive.
	Duration time.Duration
	// Requests bounds the number of calls; 0 leaves Duration alone to bound
	// the run.
	Requests int64
	// Grace is how long calls still running at start+Duration may take
	// before their context is cancelled; 0 cancels them then.
	Grace time.Duration
	// CallTimeout, if positive, is each call's own deadline, from its start.
	CallTimeout time.Duration
	// Pause is how long each worker of the closed model waits between its
	// calls (0: none). Not allowed with Rate.
	Pause time.Duration
	// DropWhenFull makes the open model drop a due call that finds every
	// worker busy, instead of making it late.
	DropWhenFull bool
}

// Validate says what is wrong with s, or nil.
func (s Spec) Validate() error {
	switch {
	case s.Workers < 1:
		return fmt.Errorf("load: %d workers: want at least 1", s.Workers)
	case s.Duration <= 0:
		return errors.New("load: the duration must be positive: every run is bounded in time")
	case s.Rate < 0 || math.IsInf(s.Rate, 0) || math.IsNaN(s.Rate):
		return fmt.Errorf("load: rate %v: want a finite rate ≥ 0", s.Rate)
	case s.Requests < 0 || s.Grace < 0 || s.CallTimeout < 0 || s.Pause < 0:
		return errors.New("load: requests, grace, call timeout and pause must not be negative")
	case s.Rate > 0 && s.Pause > 0:
		return errors.New("load: a pause is for the closed model; the open model's rate spaces the calls")
	case s.Rate == 0 && s.DropWhenFull:
		return errors.New("load: dropping calls is for the open model")
	}
	return nil
}

// Call makes call number i of a run (numbered from 0 in the order they were
// due) on worker w, 0 ≤ w < Spec.Workers, and returns the answer's status
// code (0 when there is none) and its error. A worker makes one call at a
// time, so state kept per worker needs no lock.
type Call func(ctx context.Context, i int64, w int) (status int, err error)

// Record is what one call did.
type Record struct {
	I      int64 // the call's number, in the order calls were due
	Worker int   // the worker that made it
	// Due is when the call was due: when its worker took it in the closed
	// model, start + I/Rate in the open one. Start is when it was made: after
	// Due when every worker was busy.
	Due, Start, End time.Time
	Status          int
	Err             error
	// Cut is set when the run's context had ended (the caller's, or the
	// grace period) by the time the call returned: its outcome is the end's,
	// not the server's.
	Cut bool
}

// Latency is the call's time from when it was due to its end: in the open
// model, its wait for a free worker included.
func (r Record) Latency() time.Duration { return r.End.Sub(r.Due) }

// Summary is what a run did as a whole.
type Summary struct {
	Start   time.Time
	Elapsed time.Duration // until the last call returned, grace included
	Made    int64         // calls made (each has its Record)
	// Scheduled is, in the open model, how many calls fell due within the
	// duration (at most Spec.Requests); Late how many of those made started
	// more than 1 ms after they were due, for want of a free worker;
	// Dropped how many found every worker busy with Spec.DropWhenFull
	// (which makes none late). Zero in the closed model.
	Scheduled, Late, Dropped int64
}

// lateAfter is how late a call may start before it counts as late.
const lateAfter = time.Millisecond

// Run makes the calls s describes, passing each one's Record to observe (if
// not nil) on the worker that made it, and returns when every call it made
// has returned. An invalid s is the caller's mistake: Run panics.
func Run(ctx context.Context, s Spec, call Call, observe func(Record)) Summary {
	if err := s.Validate(); err != nil {
		panic(err)
	}
	r := &run{spec: s, call: call, observe: observe, start: time.Now()}
	r.end = r.start.Add(s.Duration)
	var cancel context.CancelFunc
	r.ctx, cancel = context.WithDeadline(ctx, r.end.Add(s.Grace))
	defer cancel()
	if s.Rate > 0 {
		r.open()
	} else {
		r.closed()
	}
	return Summary{Start: r.start, Elapsed: time.Since(r.start), Made: r.made.Load(),
		Scheduled: r.scheduled, Late: r.late.Load(), Dropped: r.dropped}
}
