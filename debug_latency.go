package warmpool

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// latencyHist counts attempt latencies in fixed log-scale buckets, for the
// pool page's p50/p99 charts: eight buckets per power of two of
// microseconds (each within 12.5 % of the next), exact below 16 µs, the
// last bucket holding everything from about 36 minutes up. Adding is one
// atomic add: no lock and no allocation on the request path.
type latencyHist struct {
	n [latencyBuckets]atomic.Int64
}

const latencyBuckets = 240

// latencyBucket is the bucket of d.
func latencyBucket(d time.Duration) int {
	us := uint64(max(d, 0) / time.Microsecond)
	if us < 16 {
		return int(us)
	}
	e := bits.Len64(us) - 1 // us is in [2^e, 2^(e+1))
	sub := int(us>>(e-3)) & 7
	return min(16+(e-4)*8+sub, latencyBuckets-1)
}

// latencyBucketValue is the middle of bucket i, in microseconds.
func latencyBucketValue(i int) int64 {
	if i < 16 {
		return int64(i)
	}
	e := (i-16)/8 + 4
	sub := int64((i - 16) % 8)
	lower := (8 + sub) << (e - 3)
	return lower + int64(1)<<(e-3)/2
}

func (h *latencyHist) add(d time.Duration) { h.n[latencyBucket(d)].Add(1) }

// drainInto adds the counts to into and resets them, for the interval just
// ended: an add racing with it lands in this interval or the next, never
// in neither.
func (h *latencyHist) drainInto(into *[latencyBuckets]int64) {
	for i := range h.n {
		if h.n[i].Load() != 0 {
			into[i] += h.n[i].Swap(0)
		}
	}
}

// readInto adds the counts to into without resetting them, for the interval
// in progress.
func (h *latencyHist) readInto(into *[latencyBuckets]int64) {
	for i := range h.n {
		into[i] += h.n[i].Load()
	}
}

// latencyPercentiles returns the p50 and p99 of counts in microseconds, by
// nearest rank on the bucket middles; 0, 0 for no counts.
func latencyPercentiles(counts *[latencyBuckets]int64) (p50, p99 int64) {
	var total int64
	for _, n := range counts {
		total += n
	}
	if total == 0 {
		return 0, 0
	}
	rank50, rank99 := (total+1)/2, (total*99+99)/100
	var seen int64
	found50 := false
	for i, n := range counts {
		if n == 0 {
			continue
		}
		seen += n
		if !found50 && seen >= rank50 {
			p50, found50 = latencyBucketValue(i), true
		}
		if seen >= rank99 {
			return max(p50, 1), max(latencyBucketValue(i), 1)
		}
	}
	return max(p50, 1), max(latencyBucketValue(latencyBuckets-1), 1)
}
