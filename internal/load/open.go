package load

import (
	"context"
	"math"
	"sync"
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

// job is a due call handed to a worker of the open model.
type job struct {
	i   int64
	due time.Time
}

// open runs the open model: one scheduler hands each call, when due, to a
// free worker among spec.Workers; a call finding none waits for one, or is
// dropped with spec.DropWhenFull.
func (r *run) open() {
	n := ScheduledWithin(r.spec.Duration, r.spec.Rate)
	if r.spec.Requests > 0 {
		n = min(n, r.spec.Requests)
	}
	r.scheduled = n
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
				if start := time.Now(); start.Sub(j.due) > lateAfter {
					r.late.Add(1)
				}
				if ctx.Err() == nil {
					r.one(ctx, j.i, w, j.due)
				}
				free <- struct{}{}
			}
		})
	}
	r.schedule(n, free, jobs)
	close(jobs)
	wg.Wait()
}

// schedule hands calls 0 … n-1 to the workers as they fall due, until the
// end of the run or of its context.
func (r *run) schedule(n int64, free chan struct{}, jobs chan<- job) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for i := range n {
		due := r.start.Add(DueAt(i, r.spec.Rate))
		if !r.waitUntil(timer, due) {
			return
		}
		if r.spec.DropWhenFull {
			select {
			case <-free:
				jobs <- job{i, due}
			default:
				r.dropped++
			}
			continue
		}
		// Wait for a free worker; a call due before the end but not
		// started by then is not made.
		timer.Reset(time.Until(r.end))
		select {
		case <-free:
		case <-timer.C:
			return
		case <-r.ctx.Done():
			return
		}
		timer.Stop() // since Go 1.23, no stale fire is left to drain
		if !time.Now().Before(r.end) {
			free <- struct{}{}
			return
		}
		jobs <- job{i, due}
	}
}

// waitUntil waits until t on timer, which is stopped; false if the run's
// context ended first.
func (r *run) waitUntil(timer *time.Timer, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return r.ctx.Err() == nil
	}
	timer.Reset(d)
	select {
	case <-timer.C:
		return true
	case <-r.ctx.Done():
		timer.Stop()
		return false
	}
}
