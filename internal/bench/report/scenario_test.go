package report

import (
	"bytes"
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/doctor"
	"github.com/warmpool/warmpool/internal/bench"
)

// syntheticPhase is a phase's figures in round numbers: calls due, of which
// ok succeeded (p50, p99 in µs) and fast were failed fast by reason.
func syntheticPhase(name string, rate, secs float64, ok int64, p50, p99 int64, fast map[string]int64, timeouts, wasted int64) bench.PhaseResult {
	calls := int64(rate * secs)
	p := bench.PhaseResult{Name: name, OfferedPerS: rate, DurationS: secs, Calls: calls, OK: ok,
		GoodputPerS: float64(ok) / secs, GoodputOfCapacity: float64(ok) / secs / 1600,
		Latency:   bench.Percentiles{Count: ok, P50: p50, P99: p99, P999: p99 * 2, Max: p99 * 3},
		FastFails: bench.FastFails{ByReason: map[string]int64{}},
		Errors:    bench.NewErrorCounts(map[string]int64{"timeout": timeouts}),
	}
	for k, n := range fast {
		p.FastFails.ByReason[k] = n
		p.FastFails.Count += n
	}
	if p.FastFails.Count > 0 {
		p.FastFails.Latency = bench.Percentiles{Count: p.FastFails.Count, P50: 20, P99: 250, P999: 900, Max: 4000}
		p.FastFails.Under1ms = p.FastFails.Count - 1
	}
	if timeouts > 0 {
		p.ErrorLatency = bench.Percentiles{Count: timeouts, P50: 1_000_000, P99: 1_001_000, P999: 1_002_000, Max: 1_003_000}
	}
	p.Dropped = calls - ok - p.FastFails.Count - timeouts
	sent := calls - p.Dropped - p.FastFails.Count
	p.Server = bench.ServerSummary{Received: sent, Executed: sent, Wasted: wasted, ExecutionsPerCall: 1}
	if sent > 0 {
		p.Server.WastedShare = float64(wasted) / float64(sent)
	}
	return p
}

// total adds up the phases, as the runner does.
func total(phases ...bench.PhaseResult) bench.PhaseResult {
	t := bench.PhaseResult{Name: "all", FastFails: bench.FastFails{ByReason: map[string]int64{}}}
	kinds := map[string]int64{}
	for _, p := range phases {
		t.DurationS += p.DurationS
		t.Calls += p.Calls
		t.OK += p.OK
		t.Dropped += p.Dropped
		t.FastFails.Count += p.FastFails.Count
		t.FastFails.Under1ms += p.FastFails.Under1ms
		maps.Copy(t.FastFails.ByReason, p.FastFails.ByReason)
		if p.FastFails.Count > 0 {
			t.FastFails.Latency = p.FastFails.Latency
		}
		if p.Latency.Count > 0 {
			t.Latency = p.Latency
		}
		if p.ErrorLatency.Count > 0 {
			t.ErrorLatency = p.ErrorLatency
		}
		kinds["timeout"] += p.Errors.ByKind["timeout"]
		t.Server.Received += p.Server.Received
		t.Server.Executed += p.Server.Executed
		t.Server.Wasted += p.Server.Wasted
	}
	t.Errors = bench.NewErrorCounts(kinds)
	t.OfferedPerS = float64(t.Calls) / t.DurationS
	t.GoodputPerS = float64(t.OK) / t.DurationS
	t.GoodputOfCapacity = t.GoodputPerS / 1600
	t.Server.ExecutionsPerCall = 1
	if t.Server.Executed > 0 {
		t.Server.WastedShare = float64(t.Server.Wasted) / float64(t.Server.Executed)
	}
	return t
}

// syntheticPoolSummary is a warmpool mode's Stats at the end.
func syntheticPoolSummary(h warmpool.HostStats) *bench.PoolSummary {
	h.Protocol, h.CircuitState = "HTTP/1.1", "closed"
	st := warmpool.Stats{HostStats: h, Hosts: map[string]warmpool.HostStats{"127.0.0.1:40001": h}, Calls: h.Requests}
	st.HostStats.CircuitState, st.HostStats.Protocol = "", "" // per host only, as in Stats
	return &bench.PoolSummary{Stats: st, ReuseRate: h.ReuseRate(), Findings: []doctor.Finding{
		{Rule: "overloaded", Severity: doctor.SeverityWarning, Host: "127.0.0.1:40001", Message: "the concurrency limit refused 16,740 requests", Fix: "give the backend capacity", Value: 16740},
	}}
}

func syntheticTimeline(limit int64) []bench.TimelinePoint {
	var out []bench.TimelinePoint
	for i := range 8 {
		at := 0.25 * float64(i+1)
		out = append(out, bench.TimelinePoint{AtS: at, OKPerS: 800, ExecutedPerS: 800, Queued: int64(i), Executing: 8, InFlight: 9,
			ConcurrencyLimit: limit, LatencyMinUs: 10050, CircuitState: "closed", Overloaded: int64(100 * i)})
	}
	return out
}

// syntheticScenario is a fixed report of scenario for the golden files.
func syntheticScenario(scenario string) *bench.ScenarioReport {
	lo, hi := 0.5, 1.5
	r := &bench.ScenarioReport{
		SchemaVersion: bench.ScenarioSchemaVersion, Scenario: scenario, StartedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		WarmpoolVersion: "v0.0.0-synthetic",
		Machine:         bench.Machine{OS: "linux", Arch: "amd64", CPUModel: "Synthetic CPU @ 3.00GHz", NumCPU: 2, GOMAXPROCS: 2, GoVersion: "go1.26.0", LoadAvgStart: &lo, LoadAvgEnd: &hi},
		Settings: bench.ScenarioReportSettings{Handlers: 16, ServiceTimeMs: 10, CapacityPerS: 1600, DeadlineMs: 1000, RequestTimeoutS: 30,
			Method: "POST", URL: "http://127.0.0.1:40001/answer", Endpoints: []string{"127.0.0.1:40001"}, MaxInFlight: 6464},
	}
	switch scenario {
	case bench.ScenarioOverload:
		syntheticOverload(r)
	case bench.ScenarioHang:
		syntheticHang(r)
	case bench.ScenarioSlowReplica:
		syntheticSlow(r)
	}
	FinishScenario(r)
	return r
}

func syntheticOverload(r *bench.ScenarioReport) {
	r.Settings.Phases = []bench.PhaseSpec{{Name: "calm", RatePerS: 800, DurationS: 3, Load: 0.5}, {Name: "overload", RatePerS: 3200, DurationS: 10, StartS: 3, Load: 2},
		{Name: "after", RatePerS: 800, DurationS: 5, StartS: 13, Load: 0.5}}
	mode := func(name, feature string, phases []bench.PhaseResult, back float64) bench.ScenarioMode {
		return bench.ScenarioMode{Mode: name, Feature: feature, Phases: phases, Total: total(phases...), Timeline: syntheticTimeline(0),
			Recovery: &bench.Recovery{OverloadEndS: 13, BackAfterS: back, WindowMs: 250}, ElapsedS: 18, ErrorSample: []string{}}
	}
	tuned := mode(bench.ModeTunedNetHTTP, "", []bench.PhaseResult{
		syntheticPhase("calm", 800, 3, 2400, 11000, 15000, nil, 0, 0),
		syntheticPhase("overload", 3200, 10, 2200, 510000, 997000, nil, 20400, 18600),
		syntheticPhase("after", 800, 5, 0, 0, 0, nil, 4000, 4000)}, -1)
	tuned.Phases[1].Dropped, tuned.Phases[1].Calls = 9400, 32000
	tuned.Total = total(tuned.Phases...)
	tuned.ErrorSample = []string{"timeout: Post \"http://127.0.0.1:40001/answer\": context deadline exceeded"}
	off := mode(bench.ModeWarmpool, "", []bench.PhaseResult{
		syntheticPhase("calm", 800, 3, 2400, 11000, 15800, nil, 0, 0),
		syntheticPhase("overload", 3200, 10, 5200, 482000, 1008000, nil, 26800, 1050),
		syntheticPhase("after", 800, 5, 3950, 11500, 942000, nil, 50, 27)}, 0.25)
	off.Pool = syntheticPoolSummary(warmpool.HostStats{Created: 4819, Requests: 13441, Reused: 8622, LatencyMin: 10 * time.Millisecond})
	adaptive := mode(bench.ModeAdaptive, "concurrency_limit: adaptive", []bench.PhaseResult{
		syntheticPhase("calm", 800, 3, 2296, 11200, 14200, map[string]int64{"throttled": 104}, 0, 0),
		syntheticPhase("overload", 3200, 10, 15268, 18975, 30143, map[string]int64{"overloaded": 16732}, 0, 0),
		syntheticPhase("after", 800, 5, 3992, 11100, 14100, map[string]int64{"overloaded": 8}, 0, 0)}, 0)
	adaptive.Pool = syntheticPoolSummary(warmpool.HostStats{Created: 32, Requests: 21556, Reused: 21524, ConcurrencyLimit: 34, Overloaded: 16740,
		Throttled: 104, LatencyMin: 10038 * time.Microsecond, LatencyP50: 20 * time.Millisecond, LatencyP95: 28 * time.Millisecond, LatencyP99: 30 * time.Millisecond})
	adaptive.Timeline = syntheticTimeline(31)
	r.Modes = []bench.ScenarioMode{tuned, off, adaptive}
	for i := range r.Modes {
		r.Modes[i].HTTPClient = nil
	}
	r.Modes[2].HTTPClient = bench.HTTPClientKeys(warmpool.Config{ConcurrencyLimit: "adaptive"}.WithDefaults())
}

func syntheticHang(r *bench.ScenarioReport) {
	r.Settings.DeadlineMs = 0
	r.Settings.Phases = []bench.PhaseSpec{{Name: "healthy", RatePerS: 100, DurationS: 3, Load: 0.063},
		{Name: "hung", RatePerS: 100, DurationS: 47, StartS: 3, Load: 0.063, Event: "hang"},
		{Name: "recovered", RatePerS: 100, DurationS: 10, StartS: 50, Load: 0.063, Event: "recover"}}
	mode := func(name, feature string, phases []bench.PhaseResult, h bench.HangResult) bench.ScenarioMode {
		h.HangAtS, h.RecoveredAtS = 3, 50
		h.CircuitOpenFails.ByReason = map[string]int64{}
		return bench.ScenarioMode{Mode: name, Feature: feature, Phases: phases, Total: total(phases...), Hang: &h,
			Timeline: syntheticTimeline(0), ElapsedS: 60, ErrorSample: []string{}}
	}
	tuned := mode(bench.ModeTunedNetHTTP, "", []bench.PhaseResult{
		syntheticPhase("healthy", 100, 3, 300, 11000, 12000, nil, 0, 0),
		syntheticPhase("hung", 100, 47, 1700, 2000000, 29000000, nil, 3000, 3000),
		syntheticPhase("recovered", 100, 10, 1000, 11300, 2900000, nil, 0, 0)},
		bench.HangResult{OpenedAfterS: -1, FirstSuccessAfterS: 0.012, FirstSuccessTookS: 29.9, FullThroughputAfterS: 3, Held: 4700})
	breaker := mode(bench.ModeBreaker, "circuit_breaker_failures: 5", []bench.PhaseResult{
		syntheticPhase("healthy", 100, 3, 299, 11300, 13800, map[string]int64{"throttled": 1}, 0, 0),
		syntheticPhase("hung", 100, 47, 0, 0, 0, map[string]int64{"circuit_open": 1694}, 3006, 206),
		syntheticPhase("recovered", 100, 10, 793, 11500, 12600, map[string]int64{"circuit_open": 207}, 0, 0)},
		bench.HangResult{OpenedAfterS: 30.04, OpenForS: 5, FirstSuccessAfterS: 2.073, FirstSuccessTookS: 0.011, FullThroughputAfterS: 2.25,
			FailedBeforeFirstSuccess: 207, Held: 3006,
			CircuitOpenFails: bench.FastFails{Count: 1901, Under1ms: 1897, Latency: bench.Percentiles{Count: 1901, P50: 58, P99: 153, P999: 1924, Max: 2546}}})
	breaker.Hang.CircuitOpenFails.ByReason["circuit_open"] = 1901
	breaker.Pool = syntheticPoolSummary(warmpool.HostStats{Created: 208, Requests: 1298, Reused: 1090, CircuitOpens: 1, CircuitRejections: 1901, Throttled: 1})
	r.Modes = []bench.ScenarioMode{tuned, breaker}
}

func syntheticSlow(r *bench.ScenarioReport) {
	r.Settings.Method, r.Settings.URL = "GET", "http://backends.warmpool.test:40001/answer"
	r.Settings.Endpoints = []string{"127.0.0.1:40001", "127.0.0.2:40001", "127.0.0.3:40001"}
	r.Settings.SlowReplica, r.Settings.SlowShare, r.Settings.SlowDelayMs = "127.0.0.1:40001", 0.1, 200
	r.Settings.Phases = []bench.PhaseSpec{{Name: "steady", RatePerS: 500, DurationS: 10, Load: 0.313}}
	replicas := func(shares ...int64) []bench.ReplicaResult {
		out := make([]bench.ReplicaResult, len(shares))
		for i, n := range shares {
			out[i] = bench.ReplicaResult{Addr: r.Settings.Endpoints[i], Slow: i == 0, Received: n, Executed: n, Share: float64(n) / 5000,
				Latency: bench.Percentiles{Count: n, P50: 11300, P99: 12700, P999: 15000, Max: 16000}}
			if i == 0 {
				out[i].SlowRuns, out[i].Latency.P99 = n/10, 202000
			}
		}
		return out
	}
	mode := func(name, feature, hedge string, p99 int64, reps []bench.ReplicaResult, hedges int64) bench.ScenarioMode {
		p := syntheticPhase("steady", 500, 10, 5000, 11300, p99, nil, 0, 0)
		p.Server.Received += hedges
		p.Server.Executed += hedges
		p.Server.ExecutionsPerCall = float64(5000+hedges) / 5000
		return bench.ScenarioMode{Mode: name, Feature: feature, HedgeAfter: hedge, Phases: []bench.PhaseResult{p}, Total: p, Replicas: reps,
			HedgesSent: hedges, HedgesWon: hedges / 2, Timeline: syntheticTimeline(0), ElapsedS: 10.1, ErrorSample: []string{}}
	}
	r.Modes = []bench.ScenarioMode{
		mode(bench.ModeTunedNetHTTP, "", "", 202000, replicas(5000, 0, 0), 0),
		mode(bench.ModeWarmpool, "", "", 201000, replicas(824, 2084, 2092), 0),
		mode(bench.ModeHedgeP95, "hedge_after: p95", "p95", 201000, replicas(1036, 1898, 2066), 0),
		mode(bench.ModeHedgeFixed, "hedge_after: 13ms", "13ms", 26000, replicas(962, 2024, 2114), 100),
	}
	r.Modes[0].Total.Name = "all"
}

func TestScenarioReportGolden(t *testing.T) {
	for _, name := range bench.ScenarioNames {
		t.Run(name, func(t *testing.T) {
			r := syntheticScenario(name)
			var text, js bytes.Buffer
			if err := WriteScenarioText(&text, r); err != nil {
				t.Fatal(err)
			}
			if err := WriteScenarioJSON(&js, r); err != nil {
				t.Fatal(err)
			}
			golden(t, "scenario-"+name+".txt.golden", text.Bytes())
			golden(t, "scenario-"+name+".json.golden", js.Bytes())
			var back bench.ScenarioReport
			dec := json.NewDecoder(&js)
			dec.DisallowUnknownFields()
			if err := dec.Decode(&back); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestScenarioDefinitionsCoverEveryField walks the JSON of a report of every
// scenario and fails on a field without a definition, and on a definition
// of no field (but those it shares with the main report, whose own test
// holds them).
func TestScenarioDefinitionsCoverEveryField(t *testing.T) {
	seen := map[string]bool{}
	for _, name := range bench.ScenarioNames {
		var b bytes.Buffer
		if err := WriteScenarioJSON(&b, syntheticScenario(name)); err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		for _, key := range DefinitionKeys(doc) {
			seen[key] = true
			if _, ok := scenarioDefinitions[key]; !ok {
				t.Errorf("%s: field %q has no definition", name, key)
			}
		}
	}
	shared := map[string]bool{}
	for _, section := range []map[string]string{poolDefs, findingDefs, machineDefs, sharedScenarioDefs()} {
		for k := range section {
			shared[k] = true
		}
	}
	for key := range scenarioDefinitions {
		if !seen[key] && !shared[key] {
			t.Errorf("definition %q matches no field", key)
		}
	}
}

func TestScenarioTargets(t *testing.T) {
	met := func(r *bench.ScenarioReport) map[string]bool {
		out := map[string]bool{}
		for _, tg := range r.Targets {
			out[tg.Name] = tg.Met
		}
		return out
	}
	over := met(syntheticScenario(bench.ScenarioOverload))
	for name, want := range map[string]bool{"overload goodput": true, "overload p99": true, "wasted executions": true,
		"no rejection at 0.5x": false, "throughput at 0.5x": false, "recovery": true, "rejections fail fast": true} {
		if got, ok := over[name]; !ok || got != want {
			t.Errorf("overload %q: met %v (present %v), want %v", name, got, ok, want)
		}
	}
	hang := met(syntheticScenario(bench.ScenarioHang))
	for name, want := range map[string]bool{"fast fails once open": true, "first success after recovery": true, "calls lost": true} {
		if hang[name] != want {
			t.Errorf("hang %q: met %v, want %v", name, hang[name], want)
		}
	}
	slow := met(syntheticScenario(bench.ScenarioSlowReplica))
	for name, want := range map[string]bool{"warmpool-hedge-p95 p99": false, "warmpool-hedge-p95 extra requests": true,
		"warmpool-hedge-fixed p99": true, "warmpool-hedge-fixed extra requests": true} {
		if slow[name] != want {
			t.Errorf("slow-replica %q: met %v, want %v", name, slow[name], want)
		}
	}
	// Without the featured mode: no target, and a verdict that says so.
	r := syntheticScenario(bench.ScenarioOverload)
	r.Modes = r.Modes[:2]
	FinishScenario(r)
	if len(r.Targets) != 0 || !strings.Contains(r.Verdict, "did not run") {
		t.Errorf("without warmpool-adaptive: targets %v, verdict %q", r.Targets, r.Verdict)
	}
}
