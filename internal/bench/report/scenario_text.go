package report

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/warmpool/warmpool/internal/bench"
)

// WriteScenarioText writes a scenario's report as tables for people: each
// phase's figures per mode, the scenario's own figures, warmpool's Stats at
// the end, the featured mode's timeline, the targets and the verdict.
func WriteScenarioText(w io.Writer, r *bench.ScenarioReport) error {
	var b strings.Builder
	writeScenarioHeader(&b, r)
	for i := range r.Settings.Phases {
		p := r.Settings.Phases[i]
		fmt.Fprintf(&b, "\nPhase %s: %s calls/s for %gs (%gx capacity)%s\n", p.Name, fmtRateSpec(p.RatePerS), p.DurationS, p.Load, eventNote(p.Event))
		writePhaseTable(&b, r, func(m *bench.ScenarioMode) bench.PhaseResult { return phase(m, p.Name) })
	}
	if len(r.Settings.Phases) > 1 {
		b.WriteString("\nWhole run:\n")
		writePhaseTable(&b, r, func(m *bench.ScenarioMode) bench.PhaseResult { return m.Total })
	}
	switch r.Scenario {
	case bench.ScenarioOverload:
		writeRecovery(&b, r)
	case bench.ScenarioHang:
		writeHang(&b, r)
	case bench.ScenarioSlowReplica:
		writeReplicas(&b, r)
	}
	writeScenarioPools(&b, r)
	writeTimeline(&b, r)
	for _, m := range r.Modes {
		for _, e := range m.ErrorSample {
			fmt.Fprintf(&b, "  %s error: %s\n", m.Mode, e)
		}
	}
	writeTargets(&b, r)
	_, err := io.WriteString(w, b.String())
	return err
}

func writeScenarioHeader(b *strings.Builder, r *bench.ScenarioReport) {
	s := r.Settings
	deadline := "none of its own (request_timeout bounds it)"
	if s.DeadlineMs > 0 {
		deadline = fmtMs(s.DeadlineMs)
	}
	fmt.Fprintf(b, "warmpool bench -scenario %s (%s, %s)\n", r.Scenario, r.StartedAt.Format("2006-01-02 15:04:05Z"), r.WarmpoolVersion)
	fmt.Fprintf(b, "server: %d handlers × %s = %s req/s at most, a FIFO queue without bound, work that runs after its caller gave up; %s\n",
		s.Handlers, fmtMs(s.ServiceTimeMs), fmtRate(s.CapacityPerS), strings.Join(s.Endpoints, ", "))
	if r.Scenario == bench.ScenarioSlowReplica {
		fmt.Fprintf(b, "slow replica: %s answers %s of its requests after %s\n", s.SlowReplica, fmtShare(s.SlowShare), fmtMs(s.SlowDelayMs))
	}
	fmt.Fprintf(b, "calls: %s %s, open model, each call's deadline %s, request_timeout %gs, at most %s in flight\n",
		s.Method, s.URL, deadline, s.RequestTimeoutS, fmtInt(int64(s.MaxInFlight)))
	fmt.Fprintf(b, "machine: %s/%s, %d CPUs (%s), %s, load average %s → %s\n", r.Machine.OS, r.Machine.Arch, r.Machine.NumCPU,
		cmpOr(r.Machine.CPUModel, "?"), r.Machine.GoVersion, fmtLoad(r.Machine.LoadAvgStart), fmtLoad(r.Machine.LoadAvgEnd))
	for _, m := range r.Modes {
		fmt.Fprintf(b, "mode %s: %s\n", m.Mode, modeDescription(m))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(b, "note: %s\n", n)
	}
}

func modeDescription(m bench.ScenarioMode) string {
	switch {
	case m.Mode == bench.ModeTunedNetHTTP:
		return fmt.Sprintf("http.Client{Timeout: request_timeout}, MaxIdleConnsPerHost %d, no MaxConnsPerHost, HTTP/1.1", bench.TunedScenarioIdle)
	case m.Feature == "":
		return "warmpool as configured (concurrency_limit off, no breaker, no hedging by default)"
	}
	return "warmpool with " + m.Feature
}

// fmtRateSpec formats a rate as set: whole rates without decimals.
func fmtRateSpec(r float64) string {
	if r == float64(int64(r)) {
		return fmtInt(int64(r))
	}
	return fmtRate(r)
}

// fmtMs formats a setting in milliseconds as a Go duration: "1s", "10ms".
func fmtMs(ms float64) string { return time.Duration(ms * float64(time.Millisecond)).String() }

func fmtLoad(p *float64) string {
	if p == nil {
		return "?"
	}
	return strconv.FormatFloat(*p, 'f', 2, 64)
}

func eventNote(e string) string {
	switch e {
	case "hang":
		return "; the server hangs as it starts"
	case "recover":
		return "; the server recovers as it starts"
	}
	return ""
}

// writePhaseTable writes one row per mode of the phase get picks.
func writePhaseTable(b *strings.Builder, r *bench.ScenarioReport, get func(*bench.ScenarioMode) bench.PhaseResult) {
	t := newTable("mode", ">calls", ">goodput/s", ">of capacity", ">p50", ">p99", ">fast fails", ">ff p50", ">ff p99",
		">errors", ">err p50", ">dropped", ">executed", ">wasted", ">exec/call")
	for i := range r.Modes {
		p := get(&r.Modes[i])
		errs := "-"
		if p.Errors.Total > 0 {
			errs = errorKinds(p.Errors)
		}
		t.add(r.Modes[i].Mode, fmtInt(p.Calls), fmtRate(p.GoodputPerS), fmtShare(p.GoodputOfCapacity),
			fmtLat(p.Latency.Count, p.Latency.P50), fmtLat(p.Latency.Count, p.Latency.P99),
			fmtFast(p.FastFails), fmtLat(p.FastFails.Count, p.FastFails.Latency.P50), fmtLat(p.FastFails.Count, p.FastFails.Latency.P99),
			errs, fmtLat(p.ErrorLatency.Count, p.ErrorLatency.P50), fmtInt(p.Dropped), fmtInt(p.Server.Executed),
			fmt.Sprintf("%s (%s)", fmtInt(p.Server.Wasted), fmtShare(p.Server.WastedShare)), strconv.FormatFloat(p.Server.ExecutionsPerCall, 'f', 3, 64))
	}
	t.write(b)
}

func fmtLat(n, us int64) string {
	if n == 0 {
		return "-"
	}
	return fmtUs(us)
}

func fmtFast(f bench.FastFails) string {
	if f.Count == 0 {
		return "0"
	}
	return fmtReasons(f.ByReason)
}

func writeRecovery(b *strings.Builder, r *bench.ScenarioReport) {
	b.WriteString("\nRecovery: from the end of the overload until ≥ 95 % of the calls due succeeded within their deadline for 1s:\n")
	for _, m := range r.Modes {
		if m.Recovery != nil {
			fmt.Fprintf(b, "  %s: %s\n", m.Mode, fmtBack(m.Recovery.BackAfterS))
		}
	}
}

func writeHang(b *strings.Builder, r *bench.ScenarioReport) {
	b.WriteString("\nHang and recovery:\n")
	t := newTable("mode", ">breaker opened after", ">circuit-open fails", ">under 1ms", ">p50", ">p99", ">max",
		">held by server", ">first success after recovery", ">it took", ">full throughput after", ">failed before it", ">lost")
	for _, m := range r.Modes {
		h := m.Hang
		if h == nil {
			continue
		}
		ff := h.CircuitOpenFails
		t.add(m.Mode, fmtAfter(h.OpenedAfterS), fmtInt(ff.Count), fmtInt(ff.Under1ms), fmtLat(ff.Count, ff.Latency.P50),
			fmtLat(ff.Count, ff.Latency.P99), fmtLat(ff.Count, ff.Latency.Max), fmtInt(h.Held), fmtAfter(h.FirstSuccessAfterS),
			fmtSeconds(h.FirstSuccessTookS), fmtBack(h.FullThroughputAfterS), fmtInt(h.FailedBeforeFirstSuccess), fmtInt(h.Lost))
	}
	t.write(b)
}

func writeReplicas(b *strings.Builder, r *bench.ScenarioReport) {
	b.WriteString("\nEndpoints (server-side counts; latency of the answers each gave, caller's side):\n")
	t := newTable("mode", "endpoint", ">share", ">received", ">slow executions", ">p50", ">p99", ">hedges sent/won", ">extra requests")
	for _, m := range r.Modes {
		for i, e := range m.Replicas {
			name, hedges, extra := "", "", ""
			if i == 0 {
				name, hedges = m.Mode, fmtInt(m.HedgesSent)+"/"+fmtInt(m.HedgesWon)
				extra = fmtShare(m.Total.Server.ExecutionsPerCall - 1)
			}
			addr := e.Addr
			if e.Slow {
				addr += " (slow)"
			}
			t.add(name, addr, fmtShare(e.Share), fmtInt(e.Received), fmtInt(e.SlowRuns), fmtLat(e.Latency.Count, e.Latency.P50),
				fmtLat(e.Latency.Count, e.Latency.P99), hedges, extra)
		}
	}
	t.write(b)
}

// writeScenarioPools writes the new figures of warmpool's Stats at the end
// of each warmpool mode.
func writeScenarioPools(b *strings.Builder, r *bench.ScenarioReport) {
	t := newTable("mode", ">limit", ">overloaded", ">throttled", ">circuit opens", ">circuit rejections", ">deadline rejections",
		">latency min", ">p50", ">p99", ">hedges/wins", ">connections made", ">retries")
	rows := 0
	for _, m := range r.Modes {
		if m.Pool == nil {
			continue
		}
		s := m.Pool.Stats
		t.add(m.Mode, fmtInt(s.ConcurrencyLimit), fmtInt(s.Overloaded), fmtInt(s.Throttled), fmtInt(s.CircuitOpens), fmtInt(s.CircuitRejections),
			fmtInt(s.DeadlineRejections), fmtUs(s.LatencyMin.Microseconds()), fmtUs(s.LatencyP50.Microseconds()), fmtUs(s.LatencyP99.Microseconds()),
			fmtInt(s.Hedges)+"/"+fmtInt(s.HedgeWins), fmtInt(s.Created), fmtInt(s.Retries))
		rows++
	}
	if rows > 0 {
		b.WriteString("\nwarmpool's Stats at the end (latency: its recent window, to the end of the body):\n")
		t.write(b)
	}
}

// writeTimeline writes the featured mode's timeline, one line a second.
func writeTimeline(b *strings.Builder, r *bench.ScenarioReport) {
	m := featured(r)
	per := max(int(1/bench.TimelineStep.Seconds()), 1)
	if m == nil || len(m.Timeline) < per {
		return
	}
	fmt.Fprintf(b, "\nTimeline of %s (every second; in flight: calls under way):\n", m.Mode)
	t := newTable(">at", ">ok/s", ">executed/s", ">server queue", ">in flight", ">limit", ">latency min", "circuit",
		">overloaded", ">throttled", ">circuit rejections", ">hedges")
	for i := per - 1; i < len(m.Timeline); i += per {
		p := m.Timeline[i]
		t.add(strconv.FormatFloat(p.AtS, 'f', 1, 64)+"s", fmtRate(p.OKPerS), fmtRate(p.ExecutedPerS), fmtInt(p.Queued), fmtInt(p.InFlight), fmtInt(p.ConcurrencyLimit),
			fmtUs(p.LatencyMinUs), cmpOr(p.CircuitState, "-"), fmtInt(p.Overloaded), fmtInt(p.Throttled), fmtInt(p.CircuitRejections), fmtInt(p.Hedges))
	}
	t.write(b)
}

// featured is the last mode that turns a feature on, or the last mode.
func featured(r *bench.ScenarioReport) *bench.ScenarioMode {
	for i := len(r.Modes) - 1; i >= 0; i-- {
		if r.Modes[i].Feature != "" {
			return &r.Modes[i]
		}
	}
	if len(r.Modes) == 0 {
		return nil
	}
	return &r.Modes[len(r.Modes)-1]
}

func writeTargets(b *strings.Builder, r *bench.ScenarioReport) {
	if len(r.Targets) > 0 {
		b.WriteString("\nTargets (issue 16, held to the mode with the feature on):\n")
		t := newTable("", "target", "want", "got")
		for _, tg := range r.Targets {
			mark := "met"
			if !tg.Met {
				mark = "MISSED"
			}
			t.add(mark, tg.Name, tg.Want, tg.Got)
		}
		t.write(b)
	}
	fmt.Fprintf(b, "\nverdict: %s\n", r.Verdict)
}
