package bench

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds, from 1 µs to one hour, to three
// significant digits (HdrHistogram): a percentile is exact to 0.1%.
const (
	histLowestUs  = 1
	histHighestUs = int64(time.Hour / time.Microsecond)
	histDigits    = 3
)

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histLowestUs, histHighestUs, histDigits)
}

// toMicros rounds d up to whole microseconds within the histogram's range, so
// that no latency is reported shorter than it was.
func toMicros(d time.Duration) int64 {
	us := int64((d + time.Microsecond - 1) / time.Microsecond)
	return min(max(us, histLowestUs), histHighestUs)
}

// Latency summarizes a latency distribution of successful requests, in
// microseconds. Min and Max are exact; the percentiles come from the
// histogram, clamped to [Min, Max].
type Latency struct {
	Min  int64   `json:"min"`
	Mean float64 `json:"mean"`
	P50  int64   `json:"p50"`
	P90  int64   `json:"p90"`
	P99  int64   `json:"p99"`
	P999 int64   `json:"p99_9"`
	Max  int64   `json:"max"`
}

// CurvePoint is one point of a latency percentile curve.
type CurvePoint struct {
	Percentile float64 `json:"percentile"`
	Us         int64   `json:"us"`
}

// curvePercentiles are the points of the curve in reports: dense towards the
// tail, as the HTML chart's x axis is logarithmic in 1/(1-p).
var curvePercentiles = []float64{0, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 92.5, 95, 97.5, 99, 99.5, 99.9, 99.95, 99.99, 100}

// summarize reads the figures of h, whose exact extremes are lo and hi.
func summarize(h *hdrhistogram.Histogram, lo, hi time.Duration) (Latency, []CurvePoint) {
	if h.TotalCount() == 0 {
		return Latency{}, nil
	}
	minUs, maxUs := toMicros(lo), toMicros(hi)
	at := func(p float64) int64 {
		switch p {
		case 0:
			return minUs
		case 100:
			return maxUs
		}
		return min(max(h.ValueAtPercentile(p), minUs), maxUs)
	}
	l := Latency{
		Min: minUs, Mean: h.Mean(), Max: maxUs,
		P50: at(50), P90: at(90), P99: at(99), P999: at(99.9),
	}
	curve := make([]CurvePoint, len(curvePercentiles))
	for i, p := range curvePercentiles {
		curve[i] = CurvePoint{Percentile: p, Us: at(p)}
	}
	return l, curve
}

// recorder collects latencies from many workers. Workers share a few
// histograms, each behind its own lock, rather than owning one each: a
// histogram is ~150 KB, and there may be thousands of workers.
type recorder struct {
	shards []shard
}

type shard struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
	_  [40]byte // keep neighbouring locks off one cache line
}

func newRecorder(workers int) *recorder {
	r := &recorder{shards: make([]shard, min(workers, 16))}
	for i := range r.shards {
		r.shards[i].h = newHistogram()
	}
	return r
}

// record adds d for worker w.
func (r *recorder) record(w int, d time.Duration) {
	s := &r.shards[w%len(r.shards)]
	s.mu.Lock()
	_ = s.h.RecordValue(toMicros(d)) // toMicros keeps it in range
	s.mu.Unlock()
}

// merged returns one histogram of everything recorded. Call it after every
// worker has stopped.
func (r *recorder) merged() *hdrhistogram.Histogram {
	h := newHistogram()
	for i := range r.shards {
		h.Merge(r.shards[i].h)
	}
	return h
}
