package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/capserver"
)

// A scenario (warmpool bench -scenario) shows how clients degrade when the
// backend cannot keep up: a capacity server (internal/capserver: Handlers
// slots × ServiceTime, an unbounded FIFO queue, work that runs in full after
// its caller gave up, as uvicorn workers do) loaded in the open model, each
// call with its own deadline, by tuned net/http, warmpool's defaults and
// warmpool with the scenario's feature on:
//
//   - overload: 0.5×, 2× then 0.5× the server's capacity; the feature is
//     concurrency_limit: adaptive.
//   - hang: a steady load while the server answers, then hangs (reads
//     requests, answers none), then recovers; circuit_breaker_failures.
//   - slow-replica: three endpoints behind one name, one of which answers a
//     share of its requests late; hedge_after: p95 (and, if that misses the
//     target, a fixed hedge_after derived from the fast replicas).
//
// Every call is stamped with its caller's deadline (X-Bench-Deadline) and
// its phase (X-Bench-Tag), so the server counts per phase what it executed
// and what it executed for callers that had already given up (wasted).

// Scenarios.
const (
	ScenarioOverload    = "overload"
	ScenarioHang        = "hang"
	ScenarioSlowReplica = "slow-replica"
)

// ScenarioNames lists the scenarios.
var ScenarioNames = []string{ScenarioOverload, ScenarioHang, ScenarioSlowReplica}

// Defaults of ScenarioSettings.
const (
	DefaultScenarioDeadline = time.Second
	DefaultHangRate         = 100
	DefaultSlowRate         = 500
	DefaultBreakerFailures  = 5
	DefaultSlowShare        = 0.1
	DefaultSlowDelay        = 200 * time.Millisecond
	// TimelineStep is how often a run samples the server and the client.
	TimelineStep = 250 * time.Millisecond
	// hangFastFails is how many fast fails the hang phase leaves room for
	// after the breaker opens, by default.
	hangFastFails = 1000
)

// Targets of the slow-replica scenario, which RunScenario needs to decide
// whether to run the fixed hedge_after too; package report reads them.
const (
	HedgeTargetP99Cut = 5.0  // p99 without hedging ÷ p99 with it
	HedgeTargetExtra  = 0.05 // extra requests, server-side
)

// ScenarioSettings describes a scenario run; zero fields take defaults.
type ScenarioSettings struct {
	Scenario       string
	Handlers       int           // capacity server slots; default 16
	ServiceTime    time.Duration // one execution; default 10ms
	Deadline       time.Duration // each call's; default 1s (hang: none, request_timeout bounds it)
	RequestTimeout time.Duration // request_timeout of every mode; default warmpool's, 30s
	// Overload: the phases' loads, as multiples of the capacity, and their
	// lengths (defaults 0.5, 2; 3s, 10s, 5s).
	CalmLoad, OverLoad          float64
	CalmFor, OverloadFor, After time.Duration
	// Hang and slow-replica: the rate (defaults 100 and 500 per second).
	Rate float64
	// Hang: healthy for CalmFor (3s), hung for HangFor (default
	// request_timeout + time for 1,000 fast fails at Rate), recovered for
	// After (10s); the breaker opens after BreakerFailures (5).
	HangFor         time.Duration
	BreakerFailures int
	// Slow-replica: the run's length (10s); the slow endpoint's share of
	// late answers and their delay (0.1, 200ms).
	Duration  time.Duration
	SlowShare float64
	SlowDelay time.Duration

	Modes      []string         // default every mode of the scenario
	Config     *warmpool.Config // the warmpool modes' base configuration; nil: the defaults
	ConfigFile string           // where Config came from, for the report
	Progress   io.Writer        // nil: silent
}

// normalize fills in the defaults of s and checks it.
func (s ScenarioSettings) normalize() (ScenarioSettings, error) {
	if !slices.Contains(ScenarioNames, s.Scenario) {
		return s, fmt.Errorf("scenario %q: want one of %v", s.Scenario, ScenarioNames)
	}
	def := func(p *time.Duration, d time.Duration) {
		if *p == 0 {
			*p = d
		}
	}
	if s.Handlers == 0 {
		s.Handlers = capserver.DefaultHandlers
	}
	def(&s.ServiceTime, capserver.DefaultServiceTime)
	if s.Config == nil {
		cfg := warmpool.DefaultConfig()
		s.Config = &cfg
	}
	def(&s.RequestTimeout, s.Config.WithDefaults().RequestTimeout)
	if s.Scenario != ScenarioHang {
		def(&s.Deadline, DefaultScenarioDeadline)
	}
	switch s.Scenario {
	case ScenarioOverload:
		s.CalmLoad, s.OverLoad = orFloat(s.CalmLoad, 0.5), orFloat(s.OverLoad, 2)
		def(&s.CalmFor, 3*time.Second)
		def(&s.OverloadFor, 10*time.Second)
		def(&s.After, 5*time.Second)
	case ScenarioHang:
		s.Rate = orFloat(s.Rate, DefaultHangRate)
		def(&s.CalmFor, 3*time.Second)
		def(&s.After, 10*time.Second)
		def(&s.HangFor, s.RequestTimeout+time.Duration(1.5*hangFastFails/s.Rate*float64(time.Second))+2*time.Second)
		if s.BreakerFailures == 0 {
			s.BreakerFailures = DefaultBreakerFailures
		}
	case ScenarioSlowReplica:
		s.Rate = orFloat(s.Rate, DefaultSlowRate)
		def(&s.Duration, 10*time.Second)
		s.SlowShare = orFloat(s.SlowShare, DefaultSlowShare)
		def(&s.SlowDelay, DefaultSlowDelay)
	}
	if len(s.Modes) == 0 {
		s.Modes = DefaultScenarioModes(s.Scenario)
	}
	for _, m := range s.Modes {
		if !slices.Contains(ScenarioModes(s.Scenario), m) {
			return s, fmt.Errorf("mode %q: scenario %s has %v", m, s.Scenario, ScenarioModes(s.Scenario))
		}
	}
	return s, s.check()
}

// Check reports what is wrong with s, defaults filled in; nil if it can run.
func (s ScenarioSettings) Check() error {
	_, err := s.normalize()
	return err
}

// check reports a setting out of range, once the defaults are in.
func (s ScenarioSettings) check() error {
	for _, d := range []time.Duration{s.ServiceTime, s.RequestTimeout, s.CalmFor, s.OverloadFor, s.After, s.HangFor, s.Duration, s.SlowDelay} {
		if d < 0 {
			return errors.New("durations must not be negative")
		}
	}
	switch {
	case s.Handlers < 1:
		return fmt.Errorf("capacity handlers %d: want at least 1", s.Handlers)
	case s.Deadline < 0:
		return errors.New("the deadline must not be negative")
	case s.Rate < 0 || s.CalmLoad < 0 || s.OverLoad < 0:
		return errors.New("rates and loads must not be negative")
	case s.SlowShare < 0 || s.SlowShare > 1:
		return fmt.Errorf("slow share %v: want 0 to 1", s.SlowShare)
	case s.BreakerFailures < 0:
		return errors.New("breaker failures must not be negative")
	}
	for _, p := range s.phases() {
		if p.RatePerS*p.DurationS > maxScenarioCalls {
			return fmt.Errorf("phase %s: %.0f calls/s for %gs is more than %d calls", p.Name, p.RatePerS, p.DurationS, maxScenarioCalls)
		}
	}
	return nil
}

// maxScenarioCalls bounds each phase's calls.
const maxScenarioCalls = 1_000_000

func orFloat(v, d float64) float64 {
	if v == 0 {
		return d
	}
	return v
}

// capacity is the server's most executions per second.
func (s ScenarioSettings) capacity() float64 {
	return float64(s.Handlers) / s.ServiceTime.Seconds()
}

// callTimeout is each call's own deadline: the caller's, or, without one,
// request_timeout and a second.
func (s ScenarioSettings) callTimeout() time.Duration {
	if s.Deadline > 0 {
		return s.Deadline
	}
	return s.RequestTimeout + time.Second
}

// phases lays out the scenario's phases, back to back.
func (s ScenarioSettings) phases() []PhaseSpec {
	var ps []PhaseSpec
	add := func(name string, rate float64, d time.Duration, event string) {
		start := 0.0
		if n := len(ps); n > 0 {
			start = ps[n-1].StartS + ps[n-1].DurationS
		}
		ps = append(ps, PhaseSpec{Name: name, RatePerS: rate, DurationS: d.Seconds(), StartS: start,
			Load: round3(rate / s.capacity()), Event: event})
	}
	switch s.Scenario {
	case ScenarioOverload:
		add("calm", s.CalmLoad*s.capacity(), s.CalmFor, "")
		add("overload", s.OverLoad*s.capacity(), s.OverloadFor, "")
		add("after", s.CalmLoad*s.capacity(), s.After, "")
	case ScenarioHang:
		add("healthy", s.Rate, s.CalmFor, "")
		add("hung", s.Rate, s.HangFor, "hang")
		add("recovered", s.Rate, s.After, "recover")
	case ScenarioSlowReplica:
		add("steady", s.Rate, s.Duration, "")
	}
	return ps
}

// RunScenario runs each mode of s against a fresh capacity server (three,
// for slow-replica). Interrupted (ctx ends), it returns the modes that
// finished, marked partial, with ctx's error.
func RunScenario(ctx context.Context, s ScenarioSettings) (*ScenarioReport, error) {
	s, err := s.normalize()
	if err != nil {
		return nil, err
	}
	rep := newScenarioReport(s)
	port := ""
	modes := scenarioModes(s)
	for i := 0; i < len(modes); i++ {
		m := modes[i]
		if m.name == ModeHedgeFixed && m.hedgeAfter == "" {
			m = m.withHedge(derivedHedge(s, rep))
		}
		if s.Progress != nil {
			fmt.Fprintf(s.Progress, "warmpool bench: scenario %s, mode %s (%s)\n", s.Scenario, m.name, m.describe())
		}
		res, where, err := runScenarioMode(ctx, s, m, port)
		if err != nil {
			return nil, fmt.Errorf("mode %s: %w", m.name, err)
		}
		port = where.port
		rep.Settings.URL, rep.Settings.Endpoints, rep.Settings.SlowReplica = where.url, where.endpoints, where.slow
		rep.Modes = append(rep.Modes, *res)
		if ctx.Err() != nil {
			rep.Partial, rep.PartialReason = true, fmt.Sprintf("interrupted during mode %s", m.name)
			return rep, ctx.Err()
		}
		if extra, ok := fixedHedgeMode(s, rep, m); ok {
			modes = append(modes, extra)
		}
	}
	rep.Machine.LoadAvgEnd = loadAvg("/proc/loadavg")
	return rep, nil
}

// newScenarioReport is the report's frame, before any run.
func newScenarioReport(s ScenarioSettings) *ScenarioReport {
	rep := &ScenarioReport{
		SchemaVersion:   ScenarioSchemaVersion,
		Scenario:        s.Scenario,
		StartedAt:       time.Now().UTC().Truncate(time.Second),
		WarmpoolVersion: warmpool.BuildVersion(),
		Machine:         thisMachine(),
		Settings: ScenarioReportSettings{
			Handlers: s.Handlers, ServiceTimeMs: ms(s.ServiceTime), CapacityPerS: round3(s.capacity()),
			DeadlineMs: ms(s.Deadline), RequestTimeoutS: s.RequestTimeout.Seconds(),
			Method: scenarioMethod(s.Scenario), Phases: s.phases(), MaxInFlight: maxInFlight(s),
			Endpoints: []string{}, ConfigFile: s.ConfigFile,
		},
		Modes: []ScenarioMode{}, Targets: []Target{}, Notes: []string{},
	}
	if s.Scenario == ScenarioSlowReplica {
		rep.Settings.SlowShare, rep.Settings.SlowDelayMs = s.SlowShare, ms(s.SlowDelay)
	}
	return rep
}

// scenarioMethod is the scenario's request: the brief's POST of JSON,
// or, for hedging, which needs an idempotent request, GET.
func scenarioMethod(scenario string) string {
	if scenario == ScenarioSlowReplica {
		return "GET"
	}
	return "POST"
}

// maxInFlight is the load's cap on calls at once, the largest of its
// phases' (phaseWorkers).
func maxInFlight(s ScenarioSettings) int {
	n := 0
	for _, p := range s.phases() {
		n = max(n, phaseWorkers(s, p))
	}
	return n
}
