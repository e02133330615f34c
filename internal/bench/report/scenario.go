package report

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/warmpool/warmpool/internal/bench"
)

// FinishScenario concludes a scenario's report from its figures: the
// targets of issue 16 held to the featured mode, the one-line verdict, the
// notes that follow from the run, and the definitions of every field.
func FinishScenario(r *bench.ScenarioReport) {
	r.Targets = scenarioTargets(r)
	r.Verdict = scenarioVerdict(r)
	r.Notes = scenarioNotes(r)
	r.Definitions = scenarioDefinitions
}

// WriteScenarioJSON writes the report as one indented JSON document.
func WriteScenarioJSON(w io.Writer, r *bench.ScenarioReport) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// scenarioVerdict says in one line what turning the scenario's feature on
// bought, against tuned net/http and warmpool without it.
func scenarioVerdict(r *bench.ScenarioReport) string {
	var v string
	switch r.Scenario {
	case bench.ScenarioOverload:
		v = overloadVerdict(r)
	case bench.ScenarioHang:
		v = hangVerdict(r)
	case bench.ScenarioSlowReplica:
		v = slowVerdict(r)
	}
	if v == "" {
		v = "the mode with the feature on did not run: no verdict"
	}
	if r.Partial {
		v += " (partial run)"
	}
	return r.Scenario + ": " + v
}

// others formats f of the tuned net/http and warmpool runs, as "(tuned
// net/http X, warmpool off Y)", leaving out those that did not run.
func others(r *bench.ScenarioReport, f func(*bench.ScenarioMode) string) string {
	var parts []string
	for _, name := range []string{bench.ModeTunedNetHTTP, bench.ModeWarmpool} {
		if m := findScenarioMode(r, name); m != nil {
			parts = append(parts, modeShort(m)+" "+f(m))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// modeShort names a mode in a verdict.
func modeShort(m *bench.ScenarioMode) string {
	if m.Mode == bench.ModeWarmpool {
		return "warmpool off"
	}
	return m.Mode
}

func overloadVerdict(r *bench.ScenarioReport) string {
	a := findScenarioMode(r, bench.ModeAdaptive)
	if a == nil {
		return ""
	}
	over := func(m *bench.ScenarioMode) bench.PhaseResult { return phase(m, "overload") }
	v := fmt.Sprintf("%s kept goodput at %s of capacity under %gx load%s, p99 %s%s, and wasted %s of the server's executions%s",
		a.Feature, fmtShare(over(a).GoodputOfCapacity), loadOf(r, "overload"),
		others(r, func(m *bench.ScenarioMode) string { return fmtShare(over(m).GoodputOfCapacity) }),
		fmtUs(over(a).Latency.P99), others(r, func(m *bench.ScenarioMode) string { return fmtUs(over(m).Latency.P99) }),
		fmtShare(a.Total.Server.WastedShare), others(r, func(m *bench.ScenarioMode) string { return fmtShare(m.Total.Server.WastedShare) }))
	if a.Recovery != nil {
		v += fmt.Sprintf("; full throughput %s the overload%s", fmtBackAfter(a.Recovery.BackAfterS),
			others(r, func(m *bench.ScenarioMode) string { return fmtBack(m.Recovery.BackAfterS) }))
	}
	return v
}

func hangVerdict(r *bench.ScenarioReport) string {
	b := findScenarioMode(r, bench.ModeBreaker)
	if b == nil || b.Hang == nil {
		return ""
	}
	h := b.Hang
	if h.OpenedAfterS < 0 {
		return fmt.Sprintf("%s never opened: every call of the hang waited out its timeout", b.Feature)
	}
	waited := func(m *bench.ScenarioMode) string {
		p := phase(m, "hung")
		return fmt.Sprintf("%s calls failed after %s (p50)", fmtInt(p.Errors.Total), fmtUs(p.ErrorLatency.P50))
	}
	v := fmt.Sprintf("%s opened %gs into the hang and then failed %s calls in under 1ms each (p99 %s)%s",
		b.Feature, h.OpenedAfterS, fmtInt(h.CircuitOpenFails.Under1ms), fmtUs(h.CircuitOpenFails.Latency.P99), others(r, waited))
	return v + fmt.Sprintf("; after the recovery its first success came %s, and it lost %s calls", fmtAfter(h.FirstSuccessAfterS), fmtInt(h.Lost))
}

func slowVerdict(r *bench.ScenarioReport) string {
	base := findScenarioMode(r, bench.ModeWarmpool)
	var parts []string
	for _, name := range []string{bench.ModeHedgeP95, bench.ModeHedgeFixed} {
		h := findScenarioMode(r, name)
		if h == nil || base == nil {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s made p99 %s against %s without hedging (%.2f× lower) at %s extra requests, %s hedges sent",
			h.Feature, fmtUs(h.Total.Latency.P99), fmtUs(base.Total.Latency.P99), ratioOf(base.Total.Latency.P99, h.Total.Latency.P99),
			fmtShare(h.Total.Server.ExecutionsPerCall-1), fmtInt(h.HedgesSent)))
	}
	if len(parts) == 0 {
		return ""
	}
	v := strings.Join(parts, "; ")
	if t := findScenarioMode(r, bench.ModeTunedNetHTTP); t != nil {
		v += fmt.Sprintf("; tuned net/http p99 %s", fmtUs(t.Total.Latency.P99))
	}
	return v
}

// scenarioNotes are caveats that follow from the run's figures.
func scenarioNotes(r *bench.ScenarioReport) []string {
	notes := []string{}
	for _, m := range r.Modes {
		if m.Total.Dropped > 0 {
			notes = append(notes, fmt.Sprintf("%s: %s calls found all %s of the load's workers busy and were dropped, not sent (the machine could not keep up)",
				m.Mode, fmtInt(m.Total.Dropped), fmtInt(int64(r.Settings.MaxInFlight))))
		}
	}
	if la := r.Machine.LoadAvgStart; la != nil && *la > float64(r.Machine.NumCPU)/2 {
		notes = append(notes, fmt.Sprintf("load average %.1f on %d CPUs at the start: other processes competed for the CPUs", *la, r.Machine.NumCPU))
	}
	if r.Scenario == bench.ScenarioSlowReplica {
		notes = append(notes, "net/http dials the first address of the name and keeps it: tuned net/http sent every call to "+
			cmpOr(r.Settings.SlowReplica, "the first endpoint")+", the slow one")
	}
	return notes
}

// fmtShare formats a share as a percentage, to 0.1 %.
func fmtShare(f float64) string { return strconv.FormatFloat(100*f, 'f', 1, 64) + " %" }

// fmtBack formats a recovery time; -1 is never.
func fmtBack(s float64) string {
	if s < 0 {
		return "never within the run"
	}
	return fmtSeconds(s)
}

func fmtBackAfter(s float64) string {
	if s < 0 {
		return "did not come back within the run after"
	}
	return "came back " + fmtSeconds(s) + " after"
}

// fmtAfter formats a time after an event; -1 is never.
func fmtAfter(s float64) string {
	if s < 0 {
		return "never"
	}
	return fmtSeconds(s)
}

// fmtReasons formats counts by reason, most first: "104 throttled".
func fmtReasons(by map[string]int64) string {
	if len(by) == 0 {
		return "-"
	}
	keys := slices.SortedFunc(maps.Keys(by), func(a, b string) int {
		if by[a] != by[b] {
			return int(by[b] - by[a])
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmtInt(by[k]) + " " + k
	}
	return strings.Join(parts, ", ")
}
