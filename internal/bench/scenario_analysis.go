package bench

import (
	"time"

	"github.com/warmpool/warmpool/internal/capserver"
)

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
