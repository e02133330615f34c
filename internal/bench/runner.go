package bench

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/load"
	"github.com/warmpool/warmpool/internal/redact"
)

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
	expected   int64 // open model: requests scheduled within the duration (load.Summary.Scheduled)
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

// runLoad sends requests through c as l says, through the tooling's one
// load loop (internal/load), until l's duration or request count is
// reached, whichever is first, and returns what it measured.
func runLoad(ctx context.Context, c client, tmpl *requestTemplate, l load.Spec) *runResult {
	ph := newPhases()
	rec := newRecorder(l.Workers)
	tallies := make([]tally, l.Workers)
	for i := range tallies {
		tallies[i].protocols = make(map[string]int64)
	}
	sum := load.Run(ctx, l, func(ctx context.Context, _ int64, w int) (int, error) {
		return send(ctx, c, tmpl, ph, &tallies[w])
	}, func(r load.Record) { tallies[r.Worker].record(r, rec) })

	res := &runResult{
		elapsed:    sum.Elapsed,
		tally:      tally{protocols: make(map[string]int64)},
		hist:       rec.merged(),
		dials:      ph.dials.Load(),
		handshakes: ph.handshakes.Load(),
		dialTime:   time.Duration(ph.dialNanos.Load()),
		tlsTime:    time.Duration(ph.tlsNanos.Load()),
		expected:   sum.Scheduled,
	}
	for i := range tallies {
		res.tally.merge(&tallies[i])
	}
	res.tally.late = sum.Late
	return res
}

// send sends one request through c and reads its answer to the end,
// counting into t what only the call sees: bytes, protocols, status codes,
// and (unless c counts them itself) connection reuse. A non-2xx answer is a
// *warmpool.StatusError.
func send(ctx context.Context, c client, tmpl *requestTemplate, ph *phases, t *tally) (int, error) {
	var tr *requestTrace
	if !c.countsItself() {
		ctx, tr = ph.withTrace(ctx)
	}
	req, err := tmpl.newRequest(ctx)
	if err != nil {
		return 0, err
	}
	resp, err := c.do(req)
	if tr != nil && tr.gotConn.Load() {
		t.gotConn++
		if tr.reused.Load() {
			t.reused++
		}
	}
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	t.sent += int64(len(tmpl.body))
	t.received += n
	t.protocols[resp.Proto]++
	if err == nil && (resp.StatusCode < 200 || resp.StatusCode > 299) {
		err = &warmpool.StatusError{StatusCode: resp.StatusCode, Method: req.Method, URL: tmpl.shown, Attempts: 1}
		if t.codes == nil {
			t.codes = map[int]int64{}
		}
		t.codes[resp.StatusCode]++
	}
	return resp.StatusCode, err
}

// record counts the outcome of one call into t and, for a success, its
// latency into rec. The latency runs from when the request was due, which
// in the open model includes any wait for a free worker. A call cut short
// by the end of the run counts apart, not as an error.
func (t *tally) record(r load.Record, rec *recorder) {
	if r.Err != nil {
		if r.Cut {
			t.cancelled++
			return
		}
		k := warmpool.ErrorKind(r.Err)
		t.addErr(k, 1)
		t.addSample(k + ": " + r.Err.Error())
		return
	}
	d := r.Latency()
	if t.ok == 0 || d < t.lo {
		t.lo = d
	}
	t.hi = max(t.hi, d)
	t.ok++
	rec.record(r.Worker, d)
}
