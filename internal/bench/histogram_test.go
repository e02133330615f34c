package bench

import (
	"math"
	"testing"
	"time"
)

func TestSummarizeKnownData(t *testing.T) {
	// 1..10000 µs, once each: the p-th percentile is p×100 µs.
	r := newRecorder(4)
	for i := 1; i <= 10000; i++ {
		r.record(i, time.Duration(i)*time.Microsecond)
	}
	h := r.merged()
	if got := h.TotalCount(); got != 10000 {
		t.Fatalf("merged count: got %d, want 10000", got)
	}
	lat, curve := summarize(h, time.Microsecond, 10*time.Millisecond)
	for _, c := range []struct {
		name      string
		got, want int64
	}{
		{"min", lat.Min, 1},
		{"p50", lat.P50, 5000},
		{"p90", lat.P90, 9000},
		{"p99", lat.P99, 9900},
		{"p99.9", lat.P999, 9990},
		{"max", lat.Max, 10000},
	} {
		// Three significant digits: within 0.1 %, and never below the truth.
		if c.got < c.want || float64(c.got-c.want) > 0.001*float64(c.want)+1 {
			t.Errorf("%s: got %d µs, want %d µs (+0.1%%)", c.name, c.got, c.want)
		}
	}
	if math.Abs(lat.Mean-5000.5) > 5 {
		t.Errorf("mean: got %.1f µs, want 5000.5 ± 5", lat.Mean)
	}
	if len(curve) != len(curvePercentiles) {
		t.Fatalf("curve: got %d points, want %d", len(curve), len(curvePercentiles))
	}
	for i := 1; i < len(curve); i++ {
		if curve[i].Us < curve[i-1].Us {
			t.Errorf("curve not monotonic at p%v: %d < %d", curve[i].Percentile, curve[i].Us, curve[i-1].Us)
		}
	}
	if first, last := curve[0], curve[len(curve)-1]; first.Us != lat.Min || last.Us != lat.Max {
		t.Errorf("curve ends: got %d..%d, want min..max %d..%d", first.Us, last.Us, lat.Min, lat.Max)
	}
}

func TestSummarizeClampsToExactExtremes(t *testing.T) {
	// One value in a wide bucket: the histogram's equivalent value is above
	// the exact maximum, and no percentile may exceed the maximum.
	r := newRecorder(1)
	d := 123456789 * time.Nanosecond // 123456.789 µs
	r.record(0, d)
	lat, _ := summarize(r.merged(), d, d)
	want := int64(123457) // rounded up to whole µs
	for name, got := range map[string]int64{"min": lat.Min, "p50": lat.P50, "p99.9": lat.P999, "max": lat.Max} {
		if got != want {
			t.Errorf("%s: got %d, want %d", name, got, want)
		}
	}
}

func TestSummarizeEmpty(t *testing.T) {
	lat, curve := summarize(newHistogram(), 0, 0)
	if lat != (Latency{}) || curve != nil {
		t.Errorf("got %+v, %v; want zero and nil", lat, curve)
	}
}

func TestToMicros(t *testing.T) {
	for _, c := range []struct {
		in   time.Duration
		want int64
	}{
		{0, 1},
		{time.Nanosecond, 1},
		{time.Microsecond, 1},
		{1001 * time.Nanosecond, 2},
		{time.Millisecond, 1000},
		{2 * time.Hour, histHighestUs},
	} {
		if got := toMicros(c.in); got != c.want {
			t.Errorf("toMicros(%v): got %d, want %d", c.in, got, c.want)
		}
	}
}
