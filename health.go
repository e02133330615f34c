package warmpool

import (
	"math"
	"net/http"
	"sync/atomic"
	"time"
)

// health is what a pool's attempts tell of its server, measured once, here,
// at the end of each attempt (latency to the end of the response body), and
// read by every policy that needs it: the balancer (latency average), the
// circuit (failures in a row), the concurrency limit (interval latency,
// drops and the recent minimum), hedging (percentiles), deadline checks (the
// recent minimum) and client-side throttling (requests and accepts).
type health struct {
	ewma  atomic.Int64 // latency of successes, nanos, moving average
	fails atomic.Int32 // failures in a row: any server fault or 5xx (ejection)
	downs atomic.Int32 // of those, the ones that say the server is down (the breaker)

	lat latencyWindow // recent latencies of successes, for minimum and percentiles

	// The current interval of the adaptive concurrency limit (see
	// limiter.update); kept only when interval is set.
	interval bool
	ivSum    atomic.Int64 // latency of successes, nanos
	ivCount  atomic.Int64
	ivDrops  atomic.Int64 // 429, 503 and timeouts
	ivPeak   atomic.Int64 // most attempts in flight

	lastDrop atomic.Int64 // unix nanos of the last drop

	throttle window // requests and accepts, for client-side throttling
}

// outcome is what one attempt showed of its server.
type outcome struct {
	took   time.Duration
	status int   // 0: no answer
	err    error // nil: an answer
}

// failed reports whether o counts against the server: a fault of the
// server's (not of the client's own limits or the caller) or a 5xx.
func (o outcome) failed() bool { return o.err != nil || o.status >= 500 }

// down reports whether o says the server is down or past its capacity: it
// refused or did not answer in time, or a gateway said so (502, 503, 504).
func (o outcome) down() bool {
	if o.err == nil {
		return o.status == http.StatusBadGateway || o.status == http.StatusServiceUnavailable || o.status == http.StatusGatewayTimeout
	}
	switch ErrorKind(o.err) {
	case "refused", "timeout", "dns", "tls", "reset", "idle_race":
		return true
	}
	return false
}

// drop reports whether o says the server shed load: 429, 503 or a timeout.
func (o outcome) drop() bool {
	if o.err == nil {
		return o.status == http.StatusTooManyRequests || o.status == http.StatusServiceUnavailable
	}
	return ErrorKind(o.err) == "timeout"
}

// observe folds one attempt into the measurements. now is when it ended.
// It returns the failures and the down failures in a row, this one
// included (0, 0 after a success).
func (h *health) observe(o outcome, now time.Time) (fails, downs int32) {
	if o.drop() {
		h.ivDrops.Add(1)
		h.lastDrop.Store(now.UnixNano())
	} else if o.err == nil {
		h.throttle.add(now, 0, 1) // accepted
	}
	if o.failed() {
		fails = h.fails.Add(1)
		if o.down() {
			downs = h.downs.Add(1)
		} else if h.downs.Load() != 0 {
			h.downs.Store(0) // it answered: up, if unwell
		}
		return fails, downs
	}
	h.noteLatency(o.took)
	h.lat.add(o.took, now)
	if h.interval {
		h.ivSum.Add(int64(o.took))
		h.ivCount.Add(1)
	}
	if h.fails.Load() != 0 {
		h.fails.Store(0)
	}
	if h.downs.Load() != 0 {
		h.downs.Store(0)
	}
	return 0, 0
}

// noteLatency folds one latency into the moving average (weight 1/8 for
// the new sample). Updates racing each other may lose one; the average does
// not need them all.
func (h *health) noteLatency(d time.Duration) {
	old := h.ewma.Load()
	if old == 0 {
		h.ewma.Store(int64(d))
		return
	}
	h.ewma.Store(old + (int64(d)-old)/8)
}

// latency is the moving average of the latency of successes; 0 before any.
func (h *health) latency() time.Duration { return time.Duration(h.ewma.Load()) }

// latencyWindow keeps the latencies of recent successes in two generations of
// latencyGen each (the current one and the one before), as counts in
// logarithmic buckets and a minimum, so that percentiles and the minimum
// follow the server as it changes. Adding is two atomic operations; reading
// sums the buckets of both generations.
type latencyWindow struct {
	gens [2]latencyBuckets
	cur  atomic.Int64 // index of the current generation, as a count of generations since the epoch
}

const (
	latencyGen        = 15 * time.Second
	numLatencyBuckets = 96 // bucket i holds latencies up to latencyBase × latencyRatio^i
	latencyBase       = 50 * time.Microsecond
	latencyRatio      = 1.2
)

type latencyBuckets struct {
	epoch atomic.Int64 // the generation these counts belong to
	min   atomic.Int64 // nanos; 0: none
	n     [numLatencyBuckets]atomic.Int64
}

var logLatencyRatio = math.Log(latencyRatio)

func latencyBucket(d time.Duration) int {
	if d <= latencyBase {
		return 0
	}
	return min(int(math.Ceil(math.Log(float64(d)/float64(latencyBase))/logLatencyRatio)), numLatencyBuckets-1)
}

// bucketCeil is the largest latency bucket i holds.
func bucketCeil(i int) time.Duration {
	return time.Duration(float64(latencyBase) * math.Pow(latencyRatio, float64(i)))
}

// gen returns the buckets of the generation of now, clearing them if they
// held an older one.
func (w *latencyWindow) gen(now time.Time) *latencyBuckets {
	e := now.UnixNano() / int64(latencyGen)
	b := &w.gens[e%2]
	if old := b.epoch.Load(); old != e && b.epoch.CompareAndSwap(old, e) {
		b.min.Store(0)
		for i := range b.n {
			b.n[i].Store(0)
		}
	}
	return b
}

func (w *latencyWindow) add(d time.Duration, now time.Time) {
	b := w.gen(now)
	b.n[latencyBucket(d)].Add(1)
	for m := b.min.Load(); (m == 0 || int64(d) < m) && !b.min.CompareAndSwap(m, int64(d)); m = b.min.Load() {
	}
}

// recent reports whether generation g holds the current or the previous
// generation of now.
func (w *latencyWindow) recent(g int, now time.Time) bool {
	e := now.UnixNano() / int64(latencyGen)
	ep := w.gens[g].epoch.Load()
	return ep == e || ep == e-1
}

// min is the lowest latency of a success in the last one or two
// generations; 0 when there was none.
func (w *latencyWindow) min(now time.Time) time.Duration {
	var m int64
	for g := range w.gens {
		if v := w.gens[g].min.Load(); v > 0 && (m == 0 || v < m) && w.recent(g, now) {
			m = v
		}
	}
	return time.Duration(m)
}

// counts adds the recent bucket counts into into, and returns how many
// there are in all.
func (w *latencyWindow) counts(now time.Time, into *[numLatencyBuckets]int64) int64 {
	var total int64
	for g := range w.gens {
		if !w.recent(g, now) {
			continue
		}
		for i := range w.gens[g].n {
			n := w.gens[g].n[i].Load()
			into[i] += n
			total += n
		}
	}
	return total
}

// percentile returns the q-quantile (0 < q < 1) of counts, which hold total
// latencies: the upper bound of the bucket it falls in (at most 20 % above
// the true value); 0 with fewer than minSamples.
func percentile(counts *[numLatencyBuckets]int64, total int64, q float64) time.Duration {
	if total < minSamples {
		return 0
	}
	rank := int64(math.Ceil(q * float64(total)))
	var seen int64
	for i, n := range counts {
		if seen += n; seen >= rank {
			return bucketCeil(i)
		}
	}
	return bucketCeil(numLatencyBuckets - 1)
}

// minSamples is how many latencies a percentile needs before it is trusted.
const minSamples = 20

// window counts two things per second over the last windowSeconds seconds,
// lock-free: a request adds to the bucket of its second, reusing it when it
// holds an older second. The retry budget and client-side throttling use it.
type window struct {
	buckets [windowSeconds]windowBucket
}

const windowSeconds = 60

type windowBucket struct {
	sec  atomic.Int64
	a, b atomic.Int64
}

func (w *window) add(now time.Time, a, b int64) {
	sec := now.Unix()
	bk := &w.buckets[sec%windowSeconds]
	if old := bk.sec.Load(); old != sec && bk.sec.CompareAndSwap(old, sec) {
		bk.a.Store(0)
		bk.b.Store(0)
	}
	if a != 0 {
		bk.a.Add(a)
	}
	if b != 0 {
		bk.b.Add(b)
	}
}

// sums returns the two counts over the last secs seconds (at most
// windowSeconds), this one included.
func (w *window) sums(now time.Time, secs int64) (a, b int64) {
	sec := now.Unix()
	secs = min(secs, windowSeconds)
	for i := range w.buckets {
		bk := &w.buckets[i]
		if s := bk.sec.Load(); s > sec-secs && s <= sec {
			a += bk.a.Load()
			b += bk.b.Load()
		}
	}
	return a, b
}

// throttled runs client-side throttling, after Google SRE's adaptive
// throttling: of the requests sent over the last windowSeconds, the backend
// accepted accepts; a new one is refused with probability
// max(0, (requests − throttleK × accepts) / (requests + 1)). While the
// backend refuses everything, the share sent falls as 1/requests
// (TestThrottleDuringOutage: 44 of 1,000 calls sent). Unlike SRE's, requests counts only attempts
// that were sent and have ended, not those refused here nor those still in
// flight: refused calls then cannot keep the throttle shut once the backend
// accepts again (with them, a client whose window holds more refusals than
// twice its accepts stays throttled until they age out of it), and a young
// client's first attempts are not held against it. It waits for
// throttleMinRequests in the window. rnd draws in [0, 1).
func (h *health) throttled(now time.Time, rnd func() float64) (reqs, accepts int64, refuse bool) {
	reqs, accepts = h.throttle.sums(now, windowSeconds)
	pr := (float64(reqs) - throttleK*float64(accepts)) / float64(reqs+1)
	return reqs, accepts, reqs >= throttleMinRequests && pr > 0 && rnd() < pr
}

// throttling reports whether throttling refuses some calls now.
func (h *health) throttling(now time.Time) bool {
	reqs, accepts := h.throttle.sums(now, windowSeconds)
	return reqs >= throttleMinRequests && float64(reqs) > throttleK*float64(accepts)
}

// throttleK is SRE's K: the backend is asked for up to K times the requests
// it accepts. throttleMinRequests is the evidence the throttle needs: below
// it, a few failures of a quiet client would shut it.
const (
	throttleK           = 2
	throttleMinRequests = 20
)

// serverFault reports whether an attempt's error says something of the
// server's health: not the client's own limits, the caller's cancellation
// or the token source.
func serverFault(err error) bool {
	switch ErrorKind(err) {
	case "pool_timeout", "overloaded", "circuit_open", "too_large", "closed", "canceled", "token", "insecure_token":
		return false
	}
	return true
}
