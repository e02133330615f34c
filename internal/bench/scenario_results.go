package bench

import (
	"time"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/capserver"
)

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
