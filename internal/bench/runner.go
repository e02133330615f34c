package bench

import (
	"bytes"
	"context"
	"io"
	"math"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/redact"
)

// load is how one run loads the server, and when it stops.
type load struct {
	concurrency int           // workers (closed model) or the cap on requests in flight (open model)
	rate        float64       // open model: requests per second from the start; 0 = closed model
	duration    time.Duration // no request starts after start+duration
	requests    int64         // no more than this many requests; 0 = no bound
}

// stopGrace is how long requests still in flight at the end of a run may
// take before they are cancelled; cancelled ones are counted apart, not as
// errors. Together with the duration it bounds every run.
func stopGrace(d time.Duration) time.Duration { return max(2*time.Second, d) }

// requestTemplate makes the benchmark's request: POST, JSON body, bearer
// token unless the client adds it.
type requestTemplate struct {
	url    string
	shown  string // url without user info or query, for errors
	host   string // Host header, "" for the URL's
	body   []byte
	header map[string][]string // shared, read-only value slices
}

func newTemplate(t *target, body []byte, withAuth bool) *requestTemplate {
	h := map[string][]string{
		"Content-Type": {"application/json"},
		"Accept":       {"application/json"},
	}
	if withAuth && t.token != "" {
		h["Authorization"] = []string{"Bearer " + t.token}
	}
	return &requestTemplate{url: t.url, shown: redact.URL(t.url), host: t.host, body: body, header: h}
}

func (rt *requestTemplate) newRequest(ctx context.Context) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rt.url, bytes.NewReader(rt.body))
	if err != nil {
		return nil, err
	}
	for k, v := range rt.header {
		req.Header[k] = v
	}
	if rt.host != "" {
		req.Host = rt.host
	}
	return req, nil
}

// runResult is what one run measured on the client side.
type runResult struct {
	elapsed    time.Duration
	tally      tally
	hist       *hdrhistogram.Histogram
	dials      int64
	handshakes int64
	dialTime   time.Duration
	tlsTime    time.Duration
	expected   int64 // open model: requests scheduled within the duration
}

// add folds another slice of the same mode into r.
func (r *runResult) add(o *runResult) {
	r.elapsed += o.elapsed
	r.tally.merge(&o.tally)
	r.hist.Merge(o.hist)
	r.dials += o.dials
	r.handshakes += o.handshakes
	r.dialTime += o.dialTime
	r.tlsTime += o.tlsTime
	r.expected += o.expected
}

// completed counts requests that got an answer or an error.
func (r *runResult) completed() int64 {
	n := r.tally.ok
	for _, e := range r.tally.errs {
		n += e
	}
	return n
}

// tally is one worker's counts, merged after the run.
type tally struct {
	ok        int64
	errs      map[string]int64 // by warmpool.ErrorKind; nil until the first
	codes     map[int]int64    // non-2xx answers by status code; nil until the first
	samples   []string         // first distinct error messages
	cancelled int64            // in flight when the run was stopped
	gotConn   int64
	reused    int64
	sent      int64 // request body bytes
	received  int64 // response body bytes
	protocols map[string]int64
	lo, hi    time.Duration // fastest and slowest successful request
	late      int64         // open model: started more than 1ms after schedule
}

const maxSamples = 5

func (t *tally) addSample(msg string) {
	if len(t.samples) < maxSamples && !slices.Contains(t.samples, msg) {
		t.samples = append(t.samples, msg)
	}
}

func (t *tally) addErr(kind string, n int64) {
	if t.errs == nil {
		t.errs = map[string]int64{}
	}
	t.errs[kind] += n
}

func (t *tally) merge(o *tally) {
	if o.ok > 0 {
		if t.ok == 0 || o.lo < t.lo {
			t.lo = o.lo
		}
		t.hi = max(t.hi, o.hi)
	}
	t.ok += o.ok
	for k, n := range o.errs {
		t.addErr(k, n)
	}
	for code, n := range o.codes {
		if t.codes == nil {
			t.codes = map[int]int64{}
		}
		t.codes[code] += n
	}
	for _, s := range o.samples {
		t.addSample(s)
	}
	t.cancelled += o.cancelled
	t.gotConn += o.gotConn
	t.reused += o.reused
	t.sent += o.sent
	t.received += o.received
	for p, n := range o.protocols {
		t.protocols[p] += n
	}
	t.late += o.late
}

// runLoad sends requests through c as l says until l's duration or request
// count is reached, whichever is first, and returns what it measured.
func runLoad(ctx context.Context, c client, tmpl *requestTemplate, l load) *runResult {
	start := time.Now()
	end := start.Add(l.duration)
	ctx, cancel := context.WithDeadline(ctx, end.Add(stopGrace(l.duration)))
	defer cancel()

	var next atomic.Int64
	ph := newPhases()
	rec := newRecorder(l.concurrency)
	tallies := make([]tally, l.concurrency)
	var wg sync.WaitGroup
	for id := range l.concurrency {
		w := &worker{id: id, c: c, tmpl: tmpl, ph: ph, rec: rec, t: &tallies[id]}
		w.t.protocols = make(map[string]int64)
		wg.Go(func() {
			// A context per worker: the requests' own contexts hang off
			// it, not off one shared by every worker, whose lock they
			// would otherwise all contend for, as no real server's
			// requests do.
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			for {
				i := next.Add(1) - 1
				if l.requests > 0 && i >= l.requests {
					return
				}
				sched, ok := w.schedule(ctx, l, start, end, i)
				if !ok {
					return
				}
				w.one(ctx, sched)
			}
		})
	}
	wg.Wait()

	r := &runResult{
		elapsed:    time.Since(start),
		tally:      tally{protocols: make(map[string]int64)},
		hist:       rec.merged(),
		dials:      ph.dials.Load(),
		handshakes: ph.handshakes.Load(),
		dialTime:   time.Duration(ph.dialNanos.Load()),
		tlsTime:    time.Duration(ph.tlsNanos.Load()),
	}
	for i := range tallies {
		r.tally.merge(&tallies[i])
	}
	if l.rate > 0 {
		r.expected = scheduledWithin(l.duration, l.rate)
		if l.requests > 0 {
			r.expected = min(r.expected, l.requests)
		}
	}
	return r
}

// dueAt is when request i of an open-model run is due, from its start.
func dueAt(i int64, rate float64) time.Duration {
	return time.Duration(float64(i) / rate * float64(time.Second))
}

// scheduledWithin counts the requests due before d at rate: those the open
// model sends, exactly as schedule decides, floating point included.
func scheduledWithin(d time.Duration, rate float64) int64 {
	n := int64(math.Ceil(d.Seconds() * rate))
	for n > 0 && dueAt(n-1, rate) >= d {
		n--
	}
	for dueAt(n, rate) < d {
		n++
	}
	return n
}

// worker sends requests one after the other.
type worker struct {
	id   int
	c    client
	tmpl *requestTemplate
	ph   *phases
	rec  *recorder
	t    *tally
}

// schedule returns when request i is due, waiting for it in the open model;
// false means the run is over for this worker.
func (w *worker) schedule(ctx context.Context, l load, start, end time.Time, i int64) (time.Time, bool) {
	if ctx.Err() != nil {
		return time.Time{}, false
	}
	if l.rate <= 0 {
		now := time.Now()
		return now, now.Before(end)
	}
	sched := start.Add(dueAt(i, l.rate))
	if !sched.Before(end) {
		return time.Time{}, false
	}
	if wait := time.Until(sched); wait > 0 {
		timer := time.NewTimer(wait)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
			return time.Time{}, false
		}
	} else if -wait > time.Millisecond {
		w.t.late++
	}
	// A request due before the end but not started by then (every worker
	// was busy) is not sent: it shows as unsent, and its wait was not
	// measured.
	return sched, time.Now().Before(end)
}

// one sends one request due at sched and records its outcome. Its latency
// runs from sched, which in the open model includes any wait for a worker.
func (w *worker) one(ctx context.Context, sched time.Time) {
	rctx, tr := ctx, (*requestTrace)(nil)
	if !w.c.countsItself() {
		rctx, tr = w.ph.withTrace(ctx)
	}
	req, err := w.tmpl.newRequest(rctx)
	if err == nil {
		var resp *http.Response
		resp, err = w.c.do(req)
		if err == nil {
			var n int64
			n, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			w.t.sent += int64(len(w.tmpl.body))
			w.t.received += n
			w.t.protocols[resp.Proto]++
			if err == nil && (resp.StatusCode < 200 || resp.StatusCode > 299) {
				err = &warmpool.StatusError{StatusCode: resp.StatusCode, Method: req.Method, URL: w.tmpl.shown, Attempts: 1}
				if w.t.codes == nil {
					w.t.codes = map[int]int64{}
				}
				w.t.codes[resp.StatusCode]++
			}
		}
	}
	d := time.Since(sched)
	if tr != nil && tr.gotConn.Load() {
		w.t.gotConn++
		if tr.reused.Load() {
			w.t.reused++
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			w.t.cancelled++
			return
		}
		k := warmpool.ErrorKind(err)
		w.t.addErr(k, 1)
		w.t.addSample(k + ": " + err.Error())
		return
	}
	if w.t.ok == 0 || d < w.t.lo {
		w.t.lo = d
	}
	w.t.hi = max(w.t.hi, d)
	w.t.ok++
	w.rec.record(w.id, d)
}
