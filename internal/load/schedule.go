package load

import (
	"context"
	"math"
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
