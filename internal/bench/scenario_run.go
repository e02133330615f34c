package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/capserver"
	"github.com/warmpool/warmpool/internal/load"
)

// scenarioRun is one mode's run of a scenario: its servers, its client, and
// what it saw.
type scenarioRun struct {
	s        ScenarioSettings
	m        scenarioMode
	phases   []PhaseSpec
	srvs     []*capserver.Server
	slow     int // the slow endpoint's index; -1: none
	res      *fleetResolver
	url      string
	cl       *scenarioClient
	t        *callTally
	inFlight atomic.Int64 // calls under way
	summary  []load.Summary
	timeline []TimelinePoint
}

// scenarioFlushTimeout bounds the wait for the servers to count what they
// still hold once a run is over.
const scenarioFlushTimeout = 30 * time.Second

// servers is where a run's servers listened.
type servers struct {
	port, url string
	endpoints []string
	slow      string // the slow endpoint, if any
}

// runScenarioMode runs mode m of s against fresh servers, on port if it is
// free (the endpoints of slow-replica share one), and returns its result
// and where the servers listened.
func runScenarioMode(ctx context.Context, s ScenarioSettings, m scenarioMode, port string) (*ScenarioMode, servers, error) {
	r := &scenarioRun{s: s, m: m, phases: s.phases(), slow: -1, t: &callTally{callTimeout: s.callTimeout()}}
	if err := r.start(port); err != nil {
		return nil, servers{}, err
	}
	defer r.closeServers()
	r.t.t0 = time.Now()
	r.runPhases(ctx)
	elapsed := time.Since(r.t.t0)
	res := &ScenarioMode{Mode: m.name, Feature: m.feature, HedgeAfter: m.hedgeAfter, ElapsedS: round3(elapsed.Seconds()),
		ErrorSample: append([]string{}, r.t.samples...)}
	if wp := r.cl.wp; wp != nil {
		res.Pool = newPoolSummary(wp)
		res.HTTPClient = HTTPClientKeys(wp.Config())
		res.HedgesSent, res.HedgesWon = res.Pool.Hedges, res.Pool.HedgeWins
	}
	r.cl.close()
	fctx, cancel := context.WithTimeout(context.Background(), scenarioFlushTimeout)
	defer cancel()
	for _, srv := range r.srvs {
		srv.Flush(fctx) // a server still holding work after it is counted Unexecuted
	}
	r.results(res)
	where := servers{url: r.url}
	_, where.port, _ = net.SplitHostPort(r.srvs[0].Addr())
	for i, srv := range r.srvs {
		where.endpoints = append(where.endpoints, srv.Addr())
		if i == r.slow {
			where.slow = srv.Addr()
		}
	}
	return res, where, nil
}

// start starts the servers and the client of the run.
func (r *scenarioRun) start(port string) error {
	o := capserver.Options{Handlers: r.s.Handlers, ServiceTime: r.s.ServiceTime}
	if r.s.Scenario != ScenarioSlowReplica {
		o.Addr = "127.0.0.1:" + cmpOr(port, "0")
		srv, err := capserver.New(o)
		if err != nil && port != "" { // taken since: any port will do
			o.Addr = capserver.DefaultAddr
			srv, err = capserver.New(o)
		}
		if err != nil {
			return err
		}
		r.srvs, r.url = []*capserver.Server{srv}, srv.URL()+"/answer"
	} else if err := r.startReplicas(o, port); err != nil {
		return err
	}
	cl, err := r.m.client(r.s, r.res)
	if err != nil {
		r.closeServers()
		return err
	}
	r.cl = cl
	return nil
}

// startReplicas starts three endpoints on 127.0.0.1 … 127.0.0.3, one port,
// behind FleetName; the first answers a share of its requests late.
func (r *scenarioRun) startReplicas(o capserver.Options, port string) error {
	const replicas = 3
	var last error
	for try := range 5 { // the port may be taken on another address: try another
		if try > 0 {
			port = ""
		}
		r.closeServers()
		r.res, r.slow = &fleetResolver{}, 0
		for i := range replicas {
			oi := o
			oi.Addr = fmt.Sprintf("127.0.0.%d:%s", i+1, cmpOr(port, "0"))
			if i == r.slow {
				oi.SlowShare, oi.SlowDelay = r.s.SlowShare, r.s.SlowDelay
			}
			srv, err := capserver.New(oi)
			if last = err; err != nil {
				break
			}
			r.srvs = append(r.srvs, srv)
			_, port, _ = net.SplitHostPort(srv.Addr())
			r.res.add(fmt.Sprintf("127.0.0.%d", i+1))
		}
		if last == nil {
			r.url = "http://" + net.JoinHostPort(FleetName, port) + "/answer"
			return nil
		}
	}
	r.closeServers()
	return fmt.Errorf("starting %d servers on one port: %w", replicas, last)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (r *scenarioRun) closeServers() {
	for _, srv := range r.srvs {
		srv.Close()
	}
	r.srvs = nil
}

// runPhases runs the phases back to back, each its own open-model load
// started at its time, so that calls still under way at a phase's end
// overlap the next phase's first; it samples the timeline meanwhile.
func (r *scenarioRun) runPhases(ctx context.Context) {
	r.summary = make([]load.Summary, len(r.phases))
	var wg sync.WaitGroup
	for i, p := range r.phases {
		wg.Go(func() {
			start := time.Duration(p.StartS * float64(time.Second))
			t := time.NewTimer(time.Until(r.t.t0.Add(start)))
			defer t.Stop()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			r.event(p.Event)
			spec := load.Spec{Workers: phaseWorkers(r.s, p), Rate: p.RatePerS, Duration: time.Duration(p.DurationS * float64(time.Second)),
				Grace: r.s.callTimeout() + 2*time.Second, CallTimeout: r.s.callTimeout(), DropWhenFull: true}
			served := make([]int, spec.Workers)
			r.summary[i] = load.Run(ctx, spec, r.call(p.Name, served), r.t.observe(i, served))
		})
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	r.sample(done)
}

// phaseWorkers is a phase's cap on calls at once: enough that the schedule
// never finds every worker busy while calls last up to their deadline.
func phaseWorkers(s ScenarioSettings, p PhaseSpec) int {
	return int(p.RatePerS*s.callTimeout().Seconds()*2) + 64
}

// event does to the servers what a phase starts with.
func (r *scenarioRun) event(e string) {
	for _, srv := range r.srvs {
		switch e {
		case "hang":
			srv.SetHang(true)
		case "recover":
			srv.SetHang(false)
		}
	}
}

// call returns the load's call for phase tag: the scenario's request to the
// server, stamped with the caller's deadline and the phase; the endpoint
// that answered goes to served, by worker.
func (r *scenarioRun) call(tag string, served []int) load.Call {
	method := scenarioMethod(r.s.Scenario)
	return func(ctx context.Context, _ int64, w int) (int, error) {
		served[w] = -1
		r.inFlight.Add(1)
		defer r.inFlight.Add(-1)
		var body io.Reader
		if method == http.MethodPost {
			body = bytes.NewReader(DefaultBody)
		}
		var asked atomic.Bool
		tctx := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GetConn: func(string) { asked.Store(true) }})
		req, err := http.NewRequestWithContext(tctx, method, r.url, body)
		if err != nil {
			return 0, err
		}
		dl := time.Now().Add(r.s.RequestTimeout) // the caller gives up at its deadline or at request_timeout
		if d, ok := ctx.Deadline(); ok && d.Before(dl) {
			dl = d
		}
		req.Header.Set(capserver.DeadlineHeader, strconv.FormatInt(dl.UnixNano(), 10))
		req.Header.Set(capserver.TagHeader, tag)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := r.cl.do(req)
		if err != nil {
			return 0, notSent(ctx, err, asked.Load())
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		served[w] = r.endpoint(resp.Header.Get(capserver.ServedByHeader))
		return resp.StatusCode, err
	}
}

// endpoint is the index of the server at addr; -1 if none.
func (r *scenarioRun) endpoint(addr string) int {
	for i, srv := range r.srvs {
		if srv.Addr() == addr {
			return i
		}
	}
	return -1
}

// sample records a TimelinePoint every TimelineStep until done is closed.
func (r *scenarioRun) sample(done <-chan struct{}) {
	tick := time.NewTicker(TimelineStep)
	defer tick.Stop()
	var prev int64
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		p := TimelinePoint{AtS: round3(time.Since(r.t.t0).Seconds()), InFlight: r.inFlight.Load()}
		var executed int64
		for _, srv := range r.srvs {
			st := srv.Stats()
			executed += st.Executed
			p.Queued += st.Queued
			p.Executing += st.Executing
		}
		p.ExecutedPerS = round3(float64(executed-prev) / TimelineStep.Seconds())
		prev = executed
		if wp := r.cl.wp; wp != nil {
			st := wp.Stats()
			p.ConcurrencyLimit, p.LatencyMinUs = st.ConcurrencyLimit, st.LatencyMin.Microseconds()
			p.Overloaded, p.Throttled, p.CircuitRejections, p.Hedges = st.Overloaded, st.Throttled, st.CircuitRejections, st.Hedges
			p.CircuitState = worstCircuit(st)
		}
		r.timeline = append(r.timeline, p)
	}
}

// worstCircuit is the most open circuit state among st's hosts.
func worstCircuit(st warmpool.Stats) string {
	rank := map[string]int{"": 0, "closed": 1, "half_open": 2, "open": 3}
	worst := ""
	for _, h := range st.Hosts {
		if rank[h.CircuitState] > rank[worst] {
			worst = h.CircuitState
		}
	}
	return worst
}

// results fills res from the run's calls and the servers' counts, which
// the servers have flushed.
func (r *scenarioRun) results(res *ScenarioMode) {
	stats := make([]capserver.Stats, len(r.srvs))
	for i, srv := range r.srvs {
		stats[i] = srv.Stats()
	}
	capacity := r.s.capacity() * float64(len(r.srvs))
	res.Total = PhaseResult{Name: "all"}
	for i, p := range r.phases {
		pr := PhaseResult{Name: p.Name, OfferedPerS: p.RatePerS, DurationS: p.DurationS}
		pr.Dropped = r.summary[i].Dropped
		pr.Calls = pr.Dropped
		summarizeCalls(&pr, r.t.calls(func(c callRec) bool { return c.phase == i }), capacity)
		pr.Server = serverSummary(stats, p.Name, pr.Calls-pr.Dropped)
		res.Phases = append(res.Phases, pr)
		res.Total.DurationS += p.DurationS
		res.Total.Dropped += pr.Dropped
	}
	t := &res.Total
	t.Calls = t.Dropped
	if t.DurationS > 0 {
		t.OfferedPerS = round3(float64(t.Calls) / t.DurationS)
	}
	summarizeCalls(t, r.t.calls(func(callRec) bool { return true }), capacity)
	t.Server = serverSummary(stats, "", t.Calls-t.Dropped)
	r.fillTimeline()
	res.Timeline = r.timeline
	switch r.s.Scenario {
	case ScenarioOverload:
		res.Recovery = r.recovery()
	case ScenarioHang:
		res.Hang = r.hang(stats)
	case ScenarioSlowReplica:
		res.Replicas = r.replicas(stats)
	}
}

// serverSummary adds up the servers' counts of the requests tagged tag
// (every tag for ""), against the calls made.
func serverSummary(stats []capserver.Stats, tag string, made int64) ServerSummary {
	var s ServerSummary
	for _, st := range stats {
		for k, t := range st.ByTag {
			if tag == "" || k == tag {
				s.Received += t.Received
				s.Executed += t.Executed
				s.Wasted += t.Wasted
			}
		}
	}
	if s.Executed > 0 {
		s.WastedShare = round3(float64(s.Wasted) / float64(s.Executed))
	}
	if made > 0 {
		s.ExecutionsPerCall = round3(float64(s.Executed) / float64(made))
	}
	return s
}

// fillTimeline sets each point's successes per second: those ending in the
// step before it.
func (r *scenarioRun) fillTimeline() {
	if len(r.timeline) == 0 {
		return
	}
	counts := make([]int64, len(r.timeline))
	for _, c := range r.t.calls(func(c callRec) bool { return c.class == classOK }) {
		if i := int(c.end / TimelineStep); i < len(counts) {
			counts[i]++
		}
	}
	for i := range r.timeline {
		r.timeline[i].OKPerS = round3(float64(counts[i]) / TimelineStep.Seconds())
	}
}

// Recovery is judged over windows of calls due: throughput is back from
// the first window in which at least recoveredShare of the calls due
// succeeded within their deadline, and did so for recoveryHold windows
// (or until the run ended).
const (
	recoveryWindow = 250 * time.Millisecond
	recoveryHold   = 4
	recoveredShare = 0.95
)

// backAfter is how long after from the calls due from then (calls) were
// back at full throughput, by the rule above; -1: never before to.
func backAfter(calls []callRec, from, to time.Duration) float64 {
	n := int((to - from + recoveryWindow - 1) / recoveryWindow)
	if n <= 0 {
		return -1
	}
	due, ok := make([]int, n), make([]int, n)
	for _, c := range calls {
		i := int((c.due - from) / recoveryWindow)
		if c.due < from || i >= n {
			continue
		}
		due[i]++
		if c.class == classOK {
			ok[i]++
		}
	}
	good := func(i int) bool { return due[i] == 0 || float64(ok[i]) >= recoveredShare*float64(due[i]) }
	for b := range n {
		held := true
		for i := b; i < min(b+recoveryHold, n) && held; i++ {
			held = good(i)
		}
		if held {
			return round3((time.Duration(b) * recoveryWindow).Seconds())
		}
	}
	return -1
}

// phaseBounds is when phase i starts and ends, from the run's start.
func (r *scenarioRun) phaseBounds(i int) (start, end time.Duration) {
	p := r.phases[i]
	start = time.Duration(p.StartS * float64(time.Second))
	return start, start + time.Duration(p.DurationS*float64(time.Second))
}

// recovery is the overload scenario's: how long after the overload phase
// throughput was back.
func (r *scenarioRun) recovery() *Recovery {
	_, end := r.phaseBounds(1)
	_, last := r.phaseBounds(2)
	calls := r.t.calls(func(c callRec) bool { return c.phase == 2 })
	return &Recovery{OverloadEndS: round3(end.Seconds()), BackAfterS: backAfter(calls, end, last), WindowMs: ms(recoveryWindow)}
}

// hang is the hang scenario's figures: the breaker's fast fails while the
// server hung, and how the calls fared once it recovered.
func (r *scenarioRun) hang(stats []capserver.Stats) *HangResult {
	hangAt, _ := r.phaseBounds(1)
	recAt, last := r.phaseBounds(2)
	h := &HangResult{HangAtS: round3(hangAt.Seconds()), RecoveredAtS: round3(recAt.Seconds()), OpenedAfterS: -1,
		FirstSuccessAfterS: -1, FullThroughputAfterS: -1}
	if r.m.breaker > 0 {
		h.OpenForS = r.m.config(r.s).WithDefaults().CircuitBreakerOpenFor.Seconds()
	}
	open := r.t.calls(func(c callRec) bool { return c.class == classFastFail && c.kind == reasonCircuitOpen })
	var p PhaseResult
	summarizeCalls(&p, open, 0)
	h.CircuitOpenFails = p.FastFails
	for _, c := range open {
		if c.due >= hangAt && (h.OpenedAfterS < 0 || (c.due-hangAt).Seconds() < h.OpenedAfterS) {
			h.OpenedAfterS = round3((c.due - hangAt).Seconds())
		}
	}
	first := time.Duration(-1)
	for _, c := range r.t.calls(func(c callRec) bool { return c.class == classOK && c.end >= recAt }) {
		if first < 0 || c.end < first {
			first, h.FirstSuccessTookS = c.end, round3(c.own.Seconds())
		}
	}
	after := r.t.calls(func(c callRec) bool { return c.due >= recAt })
	if first >= 0 {
		h.FirstSuccessAfterS = round3((first - recAt).Seconds())
	}
	for _, c := range after {
		switch {
		case c.class == classOK:
		case first >= 0 && c.due < first:
			h.FailedBeforeFirstSuccess++
		default:
			h.Lost++
		}
	}
	h.FullThroughputAfterS = backAfter(after, recAt, last)
	for _, st := range stats {
		h.Held += st.ByTag["hung"].Received
	}
	return h
}

// replicas is each endpoint's counts, and the latency of the calls it
// answered.
func (r *scenarioRun) replicas(stats []capserver.Stats) []ReplicaResult {
	var sum int64
	for _, st := range stats {
		sum += st.Received
	}
	out := make([]ReplicaResult, len(stats))
	for i, st := range stats {
		out[i] = ReplicaResult{Addr: r.srvs[i].Addr(), Slow: i == r.slow, Received: st.Received, Executed: st.Executed, SlowRuns: st.Slow}
		if sum > 0 {
			out[i].Share = round3(float64(st.Received) / float64(sum))
		}
		var p PhaseResult
		summarizeCalls(&p, r.t.calls(func(c callRec) bool { return c.server == i }), 0)
		out[i].Latency = p.Latency
	}
	return out
}
