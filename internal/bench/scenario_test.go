package bench

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/load"
)

// shortScenario is s scaled down to a second or two per mode: a server of
// 2 slots × 10 ms (200 calls/s), small rates and short phases. The tests
// hold the counts, not the figures: timing on a loaded machine promises
// nothing.
func shortScenario(s ScenarioSettings) ScenarioSettings {
	s.Handlers, s.ServiceTime = 2, 10*time.Millisecond
	switch s.Scenario {
	case ScenarioOverload:
		s.Deadline = 200 * time.Millisecond
		s.CalmFor, s.OverloadFor, s.After = 300*time.Millisecond, 600*time.Millisecond, 300*time.Millisecond
	case ScenarioHang:
		s.Rate, s.RequestTimeout = 50, 150*time.Millisecond
		s.CalmFor, s.HangFor, s.After = 300*time.Millisecond, 700*time.Millisecond, 500*time.Millisecond
		s.BreakerFailures = 2
		cfg := warmpool.DefaultConfig()
		cfg.CircuitBreakerOpenFor = 200 * time.Millisecond
		s.Config = &cfg
	case ScenarioSlowReplica:
		s.Rate, s.Duration, s.SlowDelay = 100, 500*time.Millisecond, 50*time.Millisecond
		s.Modes = ScenarioModes(ScenarioSlowReplica) // the fixed hedge too, whatever p95 did
	}
	return s
}

// checkAccounting holds a mode's figures to the rule that every call due is
// counted once, and to the server's own counts.
func checkAccounting(t *testing.T, s ScenarioSettings, m ScenarioMode) {
	t.Helper()
	var calls, received int64
	for i, p := range m.Phases {
		spec := s.phases()[i]
		if want := load.ScheduledWithin(time.Duration(spec.DurationS*float64(time.Second)), spec.RatePerS); p.Calls != want {
			t.Errorf("%s %s: %d calls, want the %d scheduled", m.Mode, p.Name, p.Calls, want)
		}
		calls += p.Calls
		received += p.Server.Received
	}
	for _, p := range append(m.Phases, m.Total) {
		if sum := p.OK + p.OKLate + p.FastFails.Count + p.Errors.Total + p.Dropped + p.Cut; sum != p.Calls {
			t.Errorf("%s %s: ok %d + late %d + fast fails %d + errors %d + dropped %d + cut %d = %d, want the %d calls",
				m.Mode, p.Name, p.OK, p.OKLate, p.FastFails.Count, p.Errors.Total, p.Dropped, p.Cut, sum, p.Calls)
		}
		// Every request the server read was executed, its caller there
		// or not; every call not refused by the client reached it.
		if p.Server.Executed != p.Server.Received {
			t.Errorf("%s %s: server executed %d of %d received", m.Mode, p.Name, p.Server.Executed, p.Server.Received)
		}
		if sent := p.Calls - p.Dropped - p.FastFails.Count; p.Server.Received != sent && m.HedgesSent == 0 {
			t.Errorf("%s %s: server received %d, want the %d calls sent", m.Mode, p.Name, p.Server.Received, sent)
		}
		if p.Server.Received < p.OK+p.OKLate {
			t.Errorf("%s %s: %d successes, but the server received %d", m.Mode, p.Name, p.OK+p.OKLate, p.Server.Received)
		}
	}
	if m.Total.Calls != calls || m.Total.Server.Received != received {
		t.Errorf("%s: total %d calls, %d received; the phases add up to %d and %d", m.Mode, m.Total.Calls, m.Total.Server.Received, calls, received)
	}
	if len(m.Timeline) == 0 {
		t.Errorf("%s: no timeline", m.Mode)
	}
	if (m.Pool == nil) != (m.Mode == ModeTunedNetHTTP) {
		t.Errorf("%s: pool %v", m.Mode, m.Pool)
	}
}

func TestRunScenario(t *testing.T) {
	for _, name := range ScenarioNames {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := shortScenario(ScenarioSettings{Scenario: name})
			rep, err := RunScenario(context.Background(), s)
			if err != nil {
				t.Fatal(err)
			}
			s, _ = s.normalize()
			if got, want := len(rep.Modes), len(s.Modes); got != want {
				t.Fatalf("%d modes run, want %d", got, want)
			}
			for _, m := range rep.Modes {
				checkAccounting(t, s, m)
				checkScenarioFigures(t, name, m)
			}
		})
	}
}

// checkScenarioFigures checks what each scenario adds.
func checkScenarioFigures(t *testing.T, scenario string, m ScenarioMode) {
	t.Helper()
	switch scenario {
	case ScenarioOverload:
		if m.Recovery == nil || len(m.Phases) != 3 {
			t.Errorf("%s: recovery %v, %d phases", m.Mode, m.Recovery, len(m.Phases))
		}
	case ScenarioHang:
		h := m.Hang
		if h == nil {
			t.Fatalf("%s: no hang figures", m.Mode)
		}
		// The first calls of the hang reach the server, whatever the mode.
		if h.Held == 0 || h.Held != m.Phases[1].Server.Received {
			t.Errorf("%s: held %d, received while hung %d", m.Mode, h.Held, m.Phases[1].Server.Received)
		}
		if m.Mode != ModeBreaker && h.CircuitOpenFails.Count != 0 {
			t.Errorf("%s: %d circuit-open fails without a breaker", m.Mode, h.CircuitOpenFails.Count)
		}
	case ScenarioSlowReplica:
		var sum int64
		for _, r := range m.Replicas {
			sum += r.Received
		}
		if len(m.Replicas) != 3 || !m.Replicas[0].Slow || sum != m.Total.Server.Received {
			t.Errorf("%s: replicas %+v, want 3, the first slow, adding up to %d", m.Mode, m.Replicas, m.Total.Server.Received)
		}
		if m.Mode == ModeTunedNetHTTP && m.Replicas[0].Received != sum {
			t.Errorf("tuned net/http: the first endpoint got %d of %d; net/http keeps the first address", m.Replicas[0].Received, sum)
		}
		if m.Mode == ModeHedgeFixed && m.HedgeAfter == "" {
			t.Error("the fixed hedge has no hedge_after")
		}
	}
}

func TestNotSent(t *testing.T) {
	live := context.Background()
	ended, cancel := context.WithDeadline(live, time.Now().Add(-time.Second))
	defer cancel()
	tests := []struct {
		name   string
		ctx    context.Context
		err    error
		asked  bool
		reason string // "": not a fast fail
	}{
		{"limit", live, &warmpool.OverloadError{Limit: 20}, false, reasonOverloaded},
		{"throttled", live, &warmpool.OverloadError{Throttled: true}, false, reasonThrottled},
		{"breaker", live, fmt.Errorf("wrapped: %w", &warmpool.CircuitOpenError{}), false, reasonCircuitOpen},
		{"deadline before sending", live, context.DeadlineExceeded, false, reasonDeadline},
		{"deadline after asking for a connection", live, context.DeadlineExceeded, true, ""},
		{"the caller's deadline", ended, context.DeadlineExceeded, false, ""},
		{"other", live, errors.New("reset"), false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := notSent(tt.ctx, tt.err, tt.asked)
			var ns *notSentError
			got := ""
			if errors.As(err, &ns) {
				got = ns.reason
			}
			if got != tt.reason || !errors.Is(err, tt.err) {
				t.Errorf("got reason %q (%v), want %q", got, err, tt.reason)
			}
		})
	}
}

func TestBackAfter(t *testing.T) {
	w := recoveryWindow
	// Calls due every 50 ms over 3 s from 10 s on; those due before 10 s +
	// failFor fail.
	calls := func(failFor time.Duration) []callRec {
		var out []callRec
		for d := time.Duration(0); d < 3*time.Second; d += 50 * time.Millisecond {
			c := callRec{due: 10*time.Second + d}
			if d < failFor {
				c.class = classFailed
			}
			out = append(out, c)
		}
		return out
	}
	tests := []struct {
		name    string
		failFor time.Duration
		want    float64
	}{
		{"at once", 0, 0},
		{"after a second", time.Second, 1},
		{"mid-window", 600 * time.Millisecond, (3 * w).Seconds()},
		{"never", 3 * time.Second, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := backAfter(calls(tt.failFor), 10*time.Second, 13*time.Second); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	// A blip within the second that would have held moves it past the
	// blip; one after it does not.
	cs := calls(0)
	cs[10].class = classFailed // due at 10.5s: 1 of the 5 calls of the window from 0.5s
	if got := backAfter(cs, 10*time.Second, 13*time.Second); got != 0.75 {
		t.Errorf("with a failed window at 0.5s: got %v, want 0.75", got)
	}
	cs[10].class, cs[30].class = classOK, classFailed // at 11.5s
	if got := backAfter(cs, 10*time.Second, 13*time.Second); got != 0 {
		t.Errorf("with a failed window at 1.5s: got %v, want 0", got)
	}
}

func TestTallyCountsEachCallOnce(t *testing.T) {
	t0 := time.Now()
	tl := &callTally{t0: t0, callTimeout: time.Second}
	served := []int{2}
	obs := tl.observe(0, served)
	rec := func(took time.Duration, status int, err error, cut bool) load.Record {
		return load.Record{Due: t0, Start: t0, End: t0.Add(took), Status: status, Err: err, Cut: cut}
	}
	obs(rec(10*time.Millisecond, 200, nil, false))
	obs(rec(2*time.Second, 200, nil, false))
	obs(rec(time.Millisecond, 0, &notSentError{reasonOverloaded, warmpool.ErrOverloaded}, false))
	obs(rec(time.Second, 0, context.DeadlineExceeded, false))
	obs(rec(time.Millisecond, 503, nil, false))
	obs(rec(time.Second, 0, context.Canceled, true))
	p := PhaseResult{DurationS: 1}
	summarizeCalls(&p, tl.calls(func(callRec) bool { return true }), 100)
	want := PhaseResult{OK: 1, OKLate: 1, Cut: 1, Calls: 6}
	if p.OK != want.OK || p.OKLate != want.OKLate || p.Cut != want.Cut || p.Calls != want.Calls || p.FastFails.Count != 1 ||
		p.FastFails.ByReason[reasonOverloaded] != 1 || p.FastFails.Under1ms != 0 || p.Errors.ByKind["timeout"] != 1 || p.Errors.ByKind["status"] != 1 {
		t.Errorf("got %+v", p)
	}
	if p.GoodputPerS != 1 || p.GoodputOfCapacity != 0.01 {
		t.Errorf("goodput %v/s, %v of capacity; want 1 and 0.01", p.GoodputPerS, p.GoodputOfCapacity)
	}
	if c := tl.calls(func(callRec) bool { return true })[0]; c.server != 2 {
		t.Errorf("served by %d, want 2", c.server)
	}
}

func TestScenarioSettings(t *testing.T) {
	for _, s := range []ScenarioSettings{
		{Scenario: "flood"},
		{Scenario: ScenarioOverload, Handlers: -1},
		{Scenario: ScenarioOverload, Deadline: -time.Second},
		{Scenario: ScenarioSlowReplica, SlowShare: 2},
		{Scenario: ScenarioHang, Modes: []string{ModeAdaptive}},
		{Scenario: ScenarioOverload, OverLoad: 1e6},
	} {
		if err := s.Check(); err == nil {
			t.Errorf("%+v: want an error", s)
		}
	}
	s, err := ScenarioSettings{Scenario: ScenarioHang}.normalize()
	if err != nil {
		t.Fatal(err)
	}
	if s.Deadline != 0 || s.callTimeout() != 31*time.Second || s.HangFor != 30*time.Second+17*time.Second {
		t.Errorf("hang defaults: deadline %v, call timeout %v, hang for %v", s.Deadline, s.callTimeout(), s.HangFor)
	}
}
