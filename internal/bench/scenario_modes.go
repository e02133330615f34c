package bench

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/warmpool/warmpool"
)

// The scenarios' modes: tuned net/http, warmpool as configured (defaults
// unless -config says otherwise: ModeWarmpool), and warmpool with the
// scenario's feature on.
const (
	ModeTunedNetHTTP = "tuned-net/http"
	ModeAdaptive     = "warmpool-adaptive"
	ModeBreaker      = "warmpool-breaker"
	ModeHedgeP95     = "warmpool-hedge-p95"
	ModeHedgeFixed   = "warmpool-hedge-fixed"
)

// TunedScenarioIdle is tuned net/http's MaxIdleConnsPerHost in the
// scenarios; it has no MaxConnsPerHost.
const TunedScenarioIdle = 100

// ScenarioModes are the modes a scenario knows, in run order. The fixed
// hedge runs by default only when p95 misses its target (fixedHedgeMode).
func ScenarioModes(scenario string) []string {
	names := []string{ModeTunedNetHTTP, ModeWarmpool}
	switch scenario {
	case ScenarioOverload:
		names = append(names, ModeAdaptive)
	case ScenarioHang:
		names = append(names, ModeBreaker)
	case ScenarioSlowReplica:
		names = append(names, ModeHedgeP95, ModeHedgeFixed)
	}
	return names
}

// DefaultScenarioModes are the modes a scenario runs when none are named.
func DefaultScenarioModes(scenario string) []string {
	return slices.DeleteFunc(ScenarioModes(scenario), func(m string) bool { return m == ModeHedgeFixed })
}

// scenarioMode is one way of calling the server.
type scenarioMode struct {
	name       string
	feature    string // the setting it turns on, as YAML; "" for none
	bare       bool   // tuned net/http, not warmpool
	limit      string // concurrency_limit
	breaker    int    // circuit_breaker_failures
	hedgeAfter string // hedge_after; "" for the fixed one until it is derived
}

// scenarioModes are the modes of s, in run order.
func scenarioModes(s ScenarioSettings) []scenarioMode {
	var out []scenarioMode
	for _, name := range ScenarioModes(s.Scenario) {
		if !slices.Contains(s.Modes, name) {
			continue
		}
		m := scenarioMode{name: name}
		switch name {
		case ModeTunedNetHTTP:
			m.bare = true
		case ModeAdaptive:
			m.limit, m.feature = "adaptive", "concurrency_limit: adaptive"
		case ModeBreaker:
			m.breaker = s.BreakerFailures
			m.feature = "circuit_breaker_failures: " + strconv.Itoa(s.BreakerFailures)
		case ModeHedgeP95:
			m.hedgeAfter, m.feature = "p95", "hedge_after: p95"
		case ModeHedgeFixed:
			m.feature = "hedge_after: (derived from the fast replicas)"
		}
		out = append(out, m)
	}
	return out
}

// describe says what the mode is, for progress lines.
func (m scenarioMode) describe() string {
	switch {
	case m.bare:
		return fmt.Sprintf("http.Client, MaxIdleConnsPerHost %d, no MaxConnsPerHost", TunedScenarioIdle)
	case m.feature == "":
		return "warmpool as configured"
	}
	return "warmpool with " + m.feature
}

// withHedge returns m with a fixed hedge_after of d.
func (m scenarioMode) withHedge(d time.Duration) scenarioMode {
	m.hedgeAfter = d.String()
	m.feature = "hedge_after: " + d.String()
	return m
}

// scenarioClient is a mode's client: its Do, how to close it, and the
// warmpool client behind it, if any.
type scenarioClient struct {
	do    func(*http.Request) (*http.Response, error)
	close func()
	wp    *warmpool.Client
}

// client builds m's client for s; res, if not nil, resolves the fleet's
// name (slow-replica).
func (m scenarioMode) client(s ScenarioSettings, res *fleetResolver) (*scenarioClient, error) {
	if m.bare {
		var h1 http.Protocols
		h1.SetHTTP1(true)
		tr := &http.Transport{
			DialContext:           (&net.Dialer{Timeout: bareDialTimeout, KeepAlive: 15 * time.Second}).DialContext,
			MaxIdleConnsPerHost:   TunedScenarioIdle,
			IdleConnTimeout:       bareIdleTimeout,
			ExpectContinueTimeout: time.Second,
			Protocols:             &h1,
		}
		if res != nil {
			tr.DialContext = res.dial
		}
		hc := &http.Client{Timeout: s.RequestTimeout, Transport: tr}
		return &scenarioClient{do: hc.Do, close: tr.CloseIdleConnections}, nil
	}
	cfg := m.config(s)
	var opts []warmpool.Option
	if res != nil {
		opts = append(opts, warmpool.WithResolver(res))
	}
	c, err := warmpool.New(cfg, opts...)
	if err != nil {
		return nil, err
	}
	return &scenarioClient{do: c.Do, close: func() { c.Close() }, wp: c}, nil
}

// config is the warmpool configuration of m: s's, with request_timeout
// and m's feature.
func (m scenarioMode) config(s ScenarioSettings) warmpool.Config {
	cfg := *s.Config
	cfg.RequestTimeout = s.RequestTimeout
	cfg.DisableHTTP2 = true // cleartext HTTP/1.1 anyway
	if m.limit != "" {
		cfg.ConcurrencyLimit = m.limit
	}
	if m.breaker != 0 {
		cfg.CircuitBreakerFailures = m.breaker
	}
	if m.hedgeAfter != "" {
		cfg.HedgeAfter = m.hedgeAfter
	}
	return cfg
}

// fixedHedgeMode says, once mode m of a slow-replica run has run, whether
// the fixed hedge_after runs next and with what delay: after the p95 mode,
// if it missed a target and the fixed mode was not named (a named one runs
// in its turn, with the delay derived then).
func fixedHedgeMode(s ScenarioSettings, rep *ScenarioReport, m scenarioMode) (scenarioMode, bool) {
	if m.name != ModeHedgeP95 || slices.Contains(s.Modes, ModeHedgeFixed) {
		return scenarioMode{}, false
	}
	hedged := &rep.Modes[len(rep.Modes)-1]
	base := findScenarioMode(rep, ModeWarmpool)
	if base != nil && HedgeTargetsMet(base, hedged) {
		return scenarioMode{}, false
	}
	return scenarioMode{name: ModeHedgeFixed}.withHedge(derivedHedge(s, rep)), true
}

// HedgeTargetsMet reports whether hedged cut base's p99 of successes by
// HedgeTargetP99Cut at most HedgeTargetExtra extra requests.
func HedgeTargetsMet(base, hedged *ScenarioMode) bool {
	b, h := base.Total.Latency.P99, hedged.Total.Latency.P99
	return b > 0 && h > 0 && float64(b)/float64(h) >= HedgeTargetP99Cut &&
		hedged.Total.Server.ExecutionsPerCall-1 <= HedgeTargetExtra
}

// derivedHedge is a fixed hedge_after from the fast replicas: the highest
// p99 of the calls they answered in the warmpool mode's run (else the
// latest run's), rounded up to the millisecond; twice the service time
// without one.
func derivedHedge(s ScenarioSettings, rep *ScenarioReport) time.Duration {
	from := findScenarioMode(rep, ModeWarmpool)
	if from == nil && len(rep.Modes) > 0 {
		from = &rep.Modes[len(rep.Modes)-1]
	}
	var p99 int64
	if from != nil {
		for _, r := range from.Replicas {
			if !r.Slow {
				p99 = max(p99, r.Latency.P99)
			}
		}
	}
	if p99 == 0 {
		return 2 * s.ServiceTime
	}
	return time.Duration(math.Ceil(float64(p99)/1000)) * time.Millisecond
}

// findScenarioMode returns rep's run of mode, or nil.
func findScenarioMode(rep *ScenarioReport, mode string) *ScenarioMode {
	for i := range rep.Modes {
		if rep.Modes[i].Mode == mode {
			return &rep.Modes[i]
		}
	}
	return nil
}
