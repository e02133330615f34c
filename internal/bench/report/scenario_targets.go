package report

import (
	"fmt"

	"github.com/warmpool/warmpool/internal/bench"
)

// The overload and hang targets of issue 16's "done when" (slow-replica's
// are bench.HedgeTarget*, which the runner needs too).
const (
	targetGoodput      = 0.85 // goodput under 2× load, of capacity
	targetP99Ratio     = 3.0  // p99 under overload ÷ unloaded p99
	targetWasted       = 0.05 // wasted share of executions
	targetCalmCost     = 0.02 // throughput lost at 0.5× against warmpool off
	targetRecoveryS    = 5.0  // full throughput back after the overload
	targetFastFailUs   = 1000 // a rejected call fails within
	targetFastFailsMin = 1000 // calls failed fast once the breaker opened
)

// scenarioTargets holds r's featured mode to the targets of its scenario;
// none when that mode did not run.
func scenarioTargets(r *bench.ScenarioReport) []bench.Target {
	switch r.Scenario {
	case bench.ScenarioOverload:
		return overloadTargets(r)
	case bench.ScenarioHang:
		return hangTargets(r)
	case bench.ScenarioSlowReplica:
		return slowTargets(r)
	}
	return []bench.Target{}
}

func target(name, want, got string, met bool) bench.Target {
	return bench.Target{Name: name, Want: want, Got: got, Met: met}
}

// phase returns m's phase named name, or an empty one.
func phase(m *bench.ScenarioMode, name string) bench.PhaseResult {
	for _, p := range m.Phases {
		if p.Name == name {
			return p
		}
	}
	return bench.PhaseResult{}
}

func overloadTargets(r *bench.ScenarioReport) []bench.Target {
	out := []bench.Target{}
	a := findScenarioMode(r, bench.ModeAdaptive)
	if a == nil {
		return out
	}
	calm, over, after := phase(a, "calm"), phase(a, "overload"), phase(a, "after")
	out = append(out,
		target("overload goodput", fmt.Sprintf("≥ %.0f %% of capacity at %gx", 100*targetGoodput, loadOf(r, "overload")),
			fmtShare(over.GoodputOfCapacity), over.GoodputOfCapacity >= targetGoodput),
		target("overload p99", fmt.Sprintf("≤ %g× the unloaded p99 (%s, at %gx)", targetP99Ratio, fmtUs(calm.Latency.P99), loadOf(r, "calm")),
			fmt.Sprintf("%s (%.2f×)", fmtUs(over.Latency.P99), ratioOf(over.Latency.P99, calm.Latency.P99)),
			over.Latency.Count > 0 && calm.Latency.P99 > 0 && float64(over.Latency.P99) <= targetP99Ratio*float64(calm.Latency.P99)),
		target("wasted executions", fmt.Sprintf("≤ %.0f %% of the server's executions", 100*targetWasted),
			fmt.Sprintf("%s (%s of %s)", fmtShare(a.Total.Server.WastedShare), fmtInt(a.Total.Server.Wasted), fmtInt(a.Total.Server.Executed)),
			a.Total.Server.WastedShare <= targetWasted),
		target("no rejection at 0.5x", "0 calls rejected in the calm phase",
			fmt.Sprintf("%s (by reason %s; after the overload: %s)", fmtInt(calm.FastFails.Count), fmtReasons(calm.FastFails.ByReason), fmtInt(after.FastFails.Count)),
			calm.FastFails.Count == 0),
	)
	if w := findScenarioMode(r, bench.ModeWarmpool); w != nil {
		base := phase(w, "calm")
		cost := 1 - ratioOf64(calm.GoodputPerS, base.GoodputPerS)
		out = append(out, target("throughput at 0.5x", fmt.Sprintf("≤ %.0f %% below warmpool off", 100*targetCalmCost),
			fmt.Sprintf("%.0f/s against %.0f/s: %s lower", calm.GoodputPerS, base.GoodputPerS, fmtShare(cost)), cost <= targetCalmCost))
	}
	if rec := a.Recovery; rec != nil {
		out = append(out, target("recovery", fmt.Sprintf("full throughput within %gs of the overload's end", targetRecoveryS),
			fmtBack(rec.BackAfterS), rec.BackAfterS >= 0 && rec.BackAfterS <= targetRecoveryS))
	}
	ff := a.Total.FastFails
	out = append(out, target("rejections fail fast", fmt.Sprintf("under %s (p99)", fmtUs(targetFastFailUs)),
		fmt.Sprintf("p50 %s, p99 %s, max %s; %s of %s under 1ms", fmtUs(ff.Latency.P50), fmtUs(ff.Latency.P99), fmtUs(ff.Latency.Max),
			fmtInt(ff.Under1ms), fmtInt(ff.Count)),
		ff.Count > 0 && ff.Latency.P99 < targetFastFailUs))
	return out
}

func hangTargets(r *bench.ScenarioReport) []bench.Target {
	out := []bench.Target{}
	b := findScenarioMode(r, bench.ModeBreaker)
	if b == nil || b.Hang == nil {
		return out
	}
	h := b.Hang
	ff := h.CircuitOpenFails
	out = append(out, target("fast fails once open", fmt.Sprintf("≥ %s calls failed in under 1ms each", fmtInt(targetFastFailsMin)),
		fmt.Sprintf("%s of %s under 1ms (p50 %s, p99 %s, max %s), open %s after the hang", fmtInt(ff.Under1ms), fmtInt(ff.Count),
			fmtUs(ff.Latency.P50), fmtUs(ff.Latency.P99), fmtUs(ff.Latency.Max), fmtAfter(h.OpenedAfterS)),
		ff.Under1ms >= targetFastFailsMin))
	slack := 1 / r.Settings.Phases[len(r.Settings.Phases)-1].RatePerS // the next call's arrival
	within := h.OpenForS + h.FirstSuccessTookS + slack
	out = append(out, target("first success after recovery", fmt.Sprintf("within open_for (%gs) + 1 probe", h.OpenForS),
		fmt.Sprintf("%s after (that call took %gs)", fmtAfter(h.FirstSuccessAfterS), h.FirstSuccessTookS),
		h.FirstSuccessAfterS >= 0 && h.FirstSuccessAfterS <= within))
	out = append(out, target("calls lost", "0 calls failed that the recovered backend would have served",
		fmt.Sprintf("%s lost (%s failed before the first success)", fmtInt(h.Lost), fmtInt(h.FailedBeforeFirstSuccess)), h.Lost == 0))
	return out
}

func slowTargets(r *bench.ScenarioReport) []bench.Target {
	out := []bench.Target{}
	base := findScenarioMode(r, bench.ModeWarmpool)
	if base == nil {
		return out
	}
	for _, name := range []string{bench.ModeHedgeP95, bench.ModeHedgeFixed} {
		h := findScenarioMode(r, name)
		if h == nil {
			continue
		}
		cut := ratioOf(base.Total.Latency.P99, h.Total.Latency.P99)
		extra := h.Total.Server.ExecutionsPerCall - 1
		out = append(out,
			target(name+" p99", fmt.Sprintf("≥ %g× lower than without hedging (%s)", bench.HedgeTargetP99Cut, fmtUs(base.Total.Latency.P99)),
				fmt.Sprintf("%s (%.2f×), %s hedges sent", fmtUs(h.Total.Latency.P99), cut, fmtInt(h.HedgesSent)), cut >= bench.HedgeTargetP99Cut),
			target(name+" extra requests", fmt.Sprintf("≤ %.0f %% (server-side)", 100*bench.HedgeTargetExtra),
				fmtShare(extra), extra <= bench.HedgeTargetExtra))
	}
	return out
}

// loadOf is the load factor of r's phase name.
func loadOf(r *bench.ScenarioReport, name string) float64 {
	for _, p := range r.Settings.Phases {
		if p.Name == name {
			return p.Load
		}
	}
	return 0
}

func ratioOf(a, b int64) float64 { return ratioOf64(float64(a), float64(b)) }

func ratioOf64(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// findScenarioMode returns r's run of mode, or nil.
func findScenarioMode(r *bench.ScenarioReport, mode string) *bench.ScenarioMode {
	for i := range r.Modes {
		if r.Modes[i].Mode == mode {
			return &r.Modes[i]
		}
	}
	return nil
}
