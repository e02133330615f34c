package warmpool

import (
	"testing"
	"time"
)

func TestLatencyBucketBounds(t *testing.T) {
	for _, d := range []time.Duration{0, latencyBase, 51 * time.Microsecond, time.Millisecond, 10 * time.Millisecond, 200 * time.Millisecond, 5 * time.Second} {
		i := latencyBucket(d)
		if ceil := bucketCeil(i); d > ceil || i > 0 && d <= bucketCeil(i-1) {
			t.Errorf("%s in bucket %d (%s, %s], want it within", d, i, bucketCeil(i-1), ceil)
		}
		if i > 0 && float64(bucketCeil(i)) > float64(d)*latencyRatio*1.0001 {
			t.Errorf("%s: bucket ceiling %s, want within %g of it", d, bucketCeil(i), latencyRatio)
		}
	}
	if got := latencyBucket(time.Hour); got != numLatencyBuckets-1 {
		t.Errorf("an hour in bucket %d, want the last, %d", got, numLatencyBuckets-1)
	}
}

// TestLatencyWindow: percentiles and the minimum of the latencies of the
// current and previous generation; older ones are forgotten.
func TestLatencyWindow(t *testing.T) {
	now := time.Unix(1_000_000, 0).Truncate(latencyGen)
	var w latencyWindow
	for i := range 100 {
		d := 10 * time.Millisecond
		if i >= 95 {
			d = 200 * time.Millisecond
		}
		w.add(d, now)
	}
	var counts [numLatencyBuckets]int64
	n := w.counts(now, &counts)
	p50, p95, p99 := percentile(&counts, n, 0.5), percentile(&counts, n, 0.95), percentile(&counts, n, 0.99)
	if n != 100 || p50 < 10*time.Millisecond || p50 > 12*time.Millisecond || p95 > 12*time.Millisecond || p99 < 200*time.Millisecond || p99 > 240*time.Millisecond {
		t.Errorf("n %d, p50 %s, p95 %s, p99 %s; want 100, ≈10ms, ≈10ms, ≈200ms (within 20 %%)", n, p50, p95, p99)
	}
	if m := w.min(now); m != 10*time.Millisecond {
		t.Errorf("min %s, want 10ms", m)
	}
	// The next generation still sees these; the one after does not.
	next := now.Add(latencyGen)
	w.add(30*time.Millisecond, next)
	if m := w.min(next); m != 10*time.Millisecond {
		t.Errorf("a generation later: min %s, want still 10ms", m)
	}
	later := now.Add(2 * latencyGen)
	if m := w.min(later); m != 30*time.Millisecond {
		t.Errorf("two generations later: min %s, want the newer 30ms", m)
	}
	counts = [numLatencyBuckets]int64{}
	if n := w.counts(now.Add(3*latencyGen), &counts); n != 0 {
		t.Errorf("three generations later: %d latencies, want none", n)
	}
	if p := percentile(&counts, 19, 0.5); p != 0 {
		t.Errorf("percentile of fewer than %d samples: %s, want 0", minSamples, p)
	}
}
