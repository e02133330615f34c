package load

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// run is one Run in progress.
type run struct {
	spec       Spec
	call       Call
	observe    func(Record)
	ctx        context.Context // ends at end + grace, or with the caller's
	start, end time.Time
	made, late atomic.Int64
	// Open model, written by the scheduler alone.
	scheduled, dropped int64
}

// closed runs the closed model: each worker takes the next call's number
// and makes it, until a bound is reached.
func (r *run) closed() {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range r.spec.Workers {
		wg.Go(func() {
			// A context per worker: calls' contexts hang off it rather than
			// off one shared by every worker, whose lock they would all
			// contend for.
			ctx, cancel := context.WithCancel(r.ctx)
			defer cancel()
			timer := time.NewTimer(time.Hour)
			defer timer.Stop()
			for first := true; ; first = false {
				if !first && r.spec.Pause > 0 && !sleepOn(ctx, timer, r.spec.Pause) {
					return
				}
				i := next.Add(1) - 1
				if r.spec.Requests > 0 && i >= r.spec.Requests || ctx.Err() != nil {
					return
				}
				now := time.Now()
				if !now.Before(r.end) {
					return
				}
				r.one(ctx, i, w, now, now)
			}
		})
	}
	wg.Wait()
}

// one makes call i on worker w, due at due and starting now (start), and
// records it.
func (r *run) one(ctx context.Context, i int64, w int, due, start time.Time) {
	cctx, cancel := ctx, context.CancelFunc(nil)
	if r.spec.CallTimeout > 0 {
		cctx, cancel = context.WithTimeout(ctx, r.spec.CallTimeout)
	}
	rec := Record{I: i, Worker: w, Due: due, Start: start}
	rec.Status, rec.Err = r.call(cctx, i, w)
	rec.End = time.Now()
	if cancel != nil {
		cancel()
	}
	rec.Cut = ctx.Err() != nil
	r.made.Add(1)
	if r.observe != nil {
		r.observe(rec)
	}
}

// open runs the open model over the calls due within the duration.
func (r *run) open() {
	n := ScheduledWithin(r.spec.Duration, r.spec.Rate)
	if r.spec.Requests > 0 {
		n = min(n, r.spec.Requests)
	}
	r.scheduled = n
	if r.spec.DropWhenFull {
		r.openDropping(n)
	} else {
		r.openWaiting(n)
	}
}

// openWaiting makes calls 0 … n-1, each when due, on the first free worker:
// each worker takes the next call's number and waits until it is due. A
// worker that takes a call already overdue by more than lateAfter (every
// worker was busy) makes it late; one it takes after the end is not made.
func (r *run) openWaiting(n int64) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range r.spec.Workers {
		wg.Go(func() {
			ctx, cancel := context.WithCancel(r.ctx) // see closed
			defer cancel()
			timer := time.NewTimer(time.Hour)
			defer timer.Stop()
			for {
				i := next.Add(1) - 1
				if i >= n {
					return
				}
				due := r.start.Add(DueAt(i, r.spec.Rate))
				if wait := time.Until(due); wait > 0 {
					if !sleepOn(ctx, timer, wait) {
						return
					}
				} else if -wait > lateAfter {
					r.late.Add(1)
				}
				now := time.Now()
				if !now.Before(r.end) || ctx.Err() != nil {
					return
				}
				r.one(ctx, i, w, due, now)
			}
		})
	}
	wg.Wait()
}

// job is a due call handed to a worker.
type job struct {
	i   int64
	due time.Time
}

// openDropping hands calls 0 … n-1, each when due, to a free worker; a
// call that finds none is dropped, so slow calls never hold back the
// schedule.
func (r *run) openDropping(n int64) {
	// free holds a token per idle worker; jobs never holds more than
	// Workers, so sending on it never blocks.
	free := make(chan struct{}, r.spec.Workers)
	jobs := make(chan job, r.spec.Workers)
	var wg sync.WaitGroup
	for w := range r.spec.Workers {
		free <- struct{}{}
		wg.Go(func() {
			ctx, cancel := context.WithCancel(r.ctx) // see closed
			defer cancel()
			for j := range jobs {
				if ctx.Err() == nil {
					r.one(ctx, j.i, w, j.due, time.Now())
				}
				free <- struct{}{}
			}
		})
	}
	timer := time.NewTimer(time.Hour)
	for i := range n {
		due := r.start.Add(DueAt(i, r.spec.Rate))
		if wait := time.Until(due); wait > 0 && !sleepOn(r.ctx, timer, wait) {
			break
		}
		if r.ctx.Err() != nil {
			break
		}
		select {
		case <-free:
			jobs <- job{i, due}
		default:
			r.dropped++
		}
	}
	timer.Stop()
	close(jobs)
	wg.Wait()
}
