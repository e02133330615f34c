package doctor

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/diaghook"
)

// TestEveryRuleFromStatsAlone proves that Stats is enough: each rule of
// Rules fires on a snapshot built by hand from exported fields, with a zero
// Config standing for the defaults. One case per rule, no more.
func TestEveryRuleFromStatsAlone(t *testing.T) {
	h := func(f func(*warmpool.HostStats)) warmpool.Stats {
		hs := warmpool.HostStats{Protocol: "HTTP/1.1", Requests: 100, Reused: 80, Created: 20}
		f(&hs)
		return hostStats("backend:443", hs)
	}
	endpoints := func(requests ...int64) warmpool.Stats {
		s := warmpool.Stats{Hosts: map[string]warmpool.HostStats{}}
		for i, n := range requests {
			s.Hosts[fmt.Sprintf("10.0.0.%d:443", i+1)] = warmpool.HostStats{HostName: "api.test", EndpointState: "active", Requests: n, Ejections: int64(i)}
		}
		return s
	}
	cases := map[string]struct {
		s   warmpool.Stats
		cfg warmpool.Config
	}{
		"idle-race":          {s: h(func(h *warmpool.HostStats) { h.Failures, h.FailuresByKind = 1, map[string]int64{"idle_race": 1} })},
		"failed-requests":    {s: h(func(h *warmpool.HostStats) { h.Failures, h.FailuresByKind = 2, map[string]int64{"reset": 2} })},
		"pool-timeouts":      {s: h(func(h *warmpool.HostStats) { h.PoolTimeouts = 1 })},
		"circuit-open":       {s: h(func(h *warmpool.HostStats) { h.CircuitState, h.CircuitOpens, h.CircuitRejections = "open", 1, 1000 })},
		"overloaded":         {s: h(func(h *warmpool.HostStats) { h.Overloaded, h.ConcurrencyLimit = 40, 17 })},
		"hedging-would-help": {s: h(func(h *warmpool.HostStats) { h.LatencyP50, h.LatencyP99 = 2*time.Millisecond, 200*time.Millisecond })},
		"pool-waits":         {s: h(func(h *warmpool.HostStats) { h.Waits, h.WaitTime = 10, time.Second })},
		"unread-bodies":      {s: h(func(h *warmpool.HostStats) { h.ClosedBy.Other = 15 })},
		"server-closed-idle": {s: h(func(h *warmpool.HostStats) { h.ClosedBy.Server = 15 })},
		"learned-idle-timeout": {s: h(func(h *warmpool.HostStats) {
			h.LearnedIdleTimeout, h.LearnedIdleTimeoutFrom = time.Second, "server close"
		})},
		"goaway-churn":       {s: h(func(h *warmpool.HostStats) { h.Protocol, h.ClosedBy.Server = "HTTP/2", 15 })},
		"unused-dials":       {s: h(func(h *warmpool.HostStats) { h.ClosedBy.Unused = 5 })},
		"idle-churn":         {s: h(func(h *warmpool.HostStats) { h.ClosedBy.IdleExpiry = 15 })},
		"max-age-churn":      {s: h(func(h *warmpool.HostStats) { h.ClosedBy.MaxAge = 15 })},
		"dial-failures":      {s: h(func(h *warmpool.HostStats) { h.DialFailures.Timeout = 1 })},
		"endpoint-pinned":    {s: endpoints(300, 0, 0), cfg: warmpool.Config{Balancer: "first"}},
		"endpoint-skew":      {s: endpoints(200, 60, 40)},
		"frequent-ejections": {s: endpoints(100, 100, 100, 100)},
		"retry-budget":       {s: warmpool.Stats{BudgetRefusals: 3, Retries: 9}},
		"token-failures":     {s: warmpool.Stats{TokenFetches: 2, TokenFetchFailures: 2}},
	}
	if got, want := slices.Sorted(maps.Keys(cases)), slices.Sorted(slices.Values(Rules())); !slices.Equal(got, want) {
		t.Fatalf("cases for %v, want one per rule of Rules: %v", got, want)
	}
	for rule, tc := range cases {
		t.Run(rule, func(t *testing.T) {
			fs := Diagnose(tc.s, tc.cfg)
			if !slices.Contains(findingRules(fs), rule) {
				t.Errorf("findings %v, want %s among them", findingRules(fs), rule)
			}
			for _, f := range fs {
				if !slices.Contains(rules, f.Rule) || f.Message == "" || f.Fix == "" || f.Severity != SeverityWarning && f.Severity != SeverityError {
					t.Errorf("finding %+v: want a rule of Rules, a message, a fix and a severity", f)
				}
			}
		})
	}
}

// fromJSON decodes a HostStats from its JSON form, whose keys are the names
// of warmpool's tables: a close reason, a dial failure kind or an error kind
// reaches the figure of that name without a switch in the test.
func fromJSON(t *testing.T, format string, args ...any) warmpool.HostStats {
	t.Helper()
	var h warmpool.HostStats
	if err := json.Unmarshal(fmt.Appendf(nil, format, args...), &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// unjudged are the close reasons no rule judges by their count, and why.
// A reason added to warmpool's table fails TestEveryCloseReasonJudged until
// a rule judges it or it is listed here.
var unjudged = map[string]string{
	"client":       "Close or Shutdown closed it: the caller's choice",
	"error":        "failed-requests counts the failed attempt itself, by kind",
	"learned_idle": "learned-idle-timeout judges the learned timeout, not the closes it saves",
}

func TestEveryCloseReasonJudged(t *testing.T) {
	for _, reason := range warmpool.CloseReasonNames() {
		t.Run(reason, func(t *testing.T) {
			h := fromJSON(t, `{"protocol": "HTTP/1.1", "requests": 100, "created": 100, "closed": 50, "closed_by": {%q: 50}}`, reason)
			if h.ClosedBy.Total() != 50 {
				t.Fatalf("closed_by.%s did not decode into CloseReasons (%+v): its JSON name is not its table name", reason, h.ClosedBy)
			}
			fs := Diagnose(hostStats("backend:443", h), warmpool.Config{})
			why, ok := unjudged[reason]
			switch {
			case ok && len(fs) > 0:
				t.Errorf("findings %v for connections closed by %s, listed as unjudged (%s)", findingRules(fs), reason, why)
			case !ok && len(fs) == 0:
				t.Errorf("no finding for half the connections closed by %s: judge it in a rule, or list it in unjudged", reason)
			}
		})
	}
	for reason := range unjudged {
		if !slices.Contains(warmpool.CloseReasonNames(), reason) {
			t.Errorf("unjudged lists %q, not a close reason of warmpool.CloseReasonNames", reason)
		}
	}
}

func TestEveryDialKindHasAdvice(t *testing.T) {
	for _, kind := range warmpool.DialFailureKinds() {
		h := fromJSON(t, `{"dial_failures": {%q: 2}}`, kind)
		fs := Diagnose(hostStats("backend:443", h), warmpool.Config{})
		_, advised := dialAdvice[kind]
		if len(fs) != 1 || fs[0].Rule != "dial-failures" || fs[0].Value != 2 || !advised {
			t.Errorf("%s: findings %v (advice %v), want one dial-failures finding of value 2, with advice of its own in dialAdvice", kind, findingLines(fs), advised)
		}
	}
	for kind := range dialAdvice {
		if !slices.Contains(warmpool.DialFailureKinds(), kind) {
			t.Errorf("dialAdvice has %q, not a kind of warmpool.DialFailureKinds", kind)
		}
	}
}

func TestEveryErrorKindReported(t *testing.T) {
	for _, kind := range warmpool.ErrorKinds() {
		t.Run(kind, func(t *testing.T) {
			if _, ok := failureFixes[kind]; !ok {
				t.Errorf("failureFixes has no advice for %s", kind)
			}
			if rule, ok := namedElsewhere[kind]; ok {
				if rule != "" && !slices.Contains(rules, rule) {
					t.Errorf("namedElsewhere names %s by %q, not a rule", kind, rule)
				}
				return
			}
			h := fromJSON(t, `{"requests": 100, "failures": 3, "failures_by_kind": {%q: 3}}`, kind)
			fs := Diagnose(hostStats("backend:443", h), warmpool.Config{})
			if len(fs) != 1 || fs[0].Rule != "failed-requests" || !strings.Contains(fs[0].Message, "3 "+kind) || fs[0].Fix != failureFixes[kind] {
				t.Errorf("findings %v, want one failed-requests naming 3 %s, with its fix", findingLines(fs), kind)
			}
		})
	}
	for _, table := range []map[string]string{namedElsewhere, failureFixes} {
		for kind := range table {
			if !slices.Contains(warmpool.ErrorKinds(), kind) {
				t.Errorf("%q is not a kind of warmpool.ErrorKinds", kind)
			}
		}
	}
}

// TestRegisteredWithDiaghook: importing doctor makes its rules what
// warmpool's debug page shows.
func TestRegisteredWithDiaghook(t *testing.T) {
	s := hostStats("backend:443", warmpool.HostStats{PoolTimeouts: 2})
	for _, arg := range []struct{ stats, cfg any }{{s, warmpool.Config{}}, {&s, &warmpool.Config{}}} {
		got, ok := diaghook.Diagnose(arg.stats, arg.cfg)
		if want := Diagnose(s, warmpool.Config{}); !ok || !slices.Equal(got, want) {
			t.Errorf("diaghook.Diagnose(%T, %T) = %v, %v; want %v, true", arg.stats, arg.cfg, got, ok, want)
		}
	}
}
