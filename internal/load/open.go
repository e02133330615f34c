package load

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// DueAt is when call i of an open-model run at rate is due, from its start.
func DueAt(i int64, rate float64) time.Duration {
	return time.Duration(float64(i) / rate * float64(time.Second))
}

// ScheduledWithin counts the calls due before d at rate: those the open
// model makes, exactly as its scheduler decides, floating point included.
func ScheduledWithin(d time.Duration, rate float64) int64 {
	n := int64(math.Ceil(d.Seconds() * rate))
	for n > 0 && DueAt(n-1, rate) >= d {
		n--
	}
	for DueAt(n, rate) < d {
		n++
	}
	return n
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

// sleepOn waits d on timer, which is stopped when sleepOn returns; false if
// ctx ended first. (Since Go 1.23 a stopped timer leaves no stale fire to
// drain.)
func sleepOn(ctx context.Context, timer *time.Timer, d time.Duration) bool {
	timer.Reset(d)
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		timer.Stop()
		return false
	}
}
