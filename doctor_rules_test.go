package warmpool

import (
	"strings"
	"testing"
	"time"
)

// TestDiagnoseFailureRules checks the rules on failed requests and the
// server's connection habits, on made-up snapshots: a failure of any kind is
// an error finding, and a pool with none and nothing else wrong is healthy.
func TestDiagnoseFailureRules(t *testing.T) {
	base := HostStats{Protocol: "HTTP/1.1", Requests: 100, Reused: 90, Created: 10}
	with := func(f func(*HostStats)) HostStats { h := base; f(&h); return h }
	for _, tc := range []struct {
		name     string
		h        HostStats
		rules    []string // in order; none for a healthy pool
		severity Severity
		message  string
	}{
		{"healthy", base, nil, "", ""},
		{"one idle race", with(func(h *HostStats) { h.Failures, h.FailuresByKind = 1, map[string]int64{"idle_race": 1} }),
			[]string{"idle-race"}, SeverityError, "1 requests failed because the server closed the idle pooled connection"},
		{"idle race, then learned", with(func(h *HostStats) {
			h.Failures, h.FailuresByKind = 2, map[string]int64{"idle_race": 2}
			h.LearnedIdleTimeout, h.LearnedIdleTimeoutFrom = 5*time.Second, "server close"
		}), []string{"idle-race", "learned-idle-timeout"}, SeverityError, "warmpool has since learned it (5s, from the server close)"},
		{"resets and timeouts", with(func(h *HostStats) { h.Failures, h.FailuresByKind = 3, map[string]int64{"reset": 2, "timeout": 1} }),
			[]string{"failed-requests"}, SeverityError, "3 attempts failed: 1 timeout, 2 reset"},
		{"learned timeout alone", with(func(h *HostStats) { h.LearnedIdleTimeout, h.LearnedIdleTimeoutFrom = time.Second, "keep-alive header" }),
			[]string{"learned-idle-timeout"}, SeverityWarning, "the server closes connections idle for 1s (learned from the keep-alive header)"},
		{"GOAWAY churn", with(func(h *HostStats) { h.Protocol, h.ClosedBy.Server = "HTTP/2", 10 }),
			[]string{"goaway-churn"}, SeverityWarning, "the server ended 10 HTTP/2 connections in 100 requests (one every 10)"},
		{"GOAWAY rarely", with(func(h *HostStats) { h.Protocol, h.Requests, h.Reused, h.ClosedBy.Server = "HTTP/2", 10000, 9990, 5 }),
			nil, "", ""},
		{"unused dials", with(func(h *HostStats) { h.Created, h.ClosedBy.Unused = 20, 5 }),
			[]string{"unused-dials"}, SeverityWarning, "5 of 20 connections were dialed and closed without serving a request"},
		{"server closes idle, requests fail", with(func(h *HostStats) {
			h.ClosedBy.Server = 10
			h.Failures, h.FailuresByKind = 1, map[string]int64{"idle_race": 1}
		}), []string{"idle-race", "server-closed-idle"}, SeverityError, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Stats{HostStats: tc.h, Hosts: map[string]HostStats{"backend:443": tc.h}}
			fs := Diagnose(s, Config{})
			var rules []string
			for _, f := range fs {
				rules = append(rules, f.Rule)
			}
			if strings.Join(rules, ",") != strings.Join(tc.rules, ",") {
				t.Fatalf("rules %v, want %v:\n%s", rules, tc.rules, strings.Join(findingLines(fs), "\n"))
			}
			if len(fs) == 0 {
				return
			}
			for _, f := range fs {
				if tc.severity == SeverityError && strings.Contains(f.Rule, "idle") && f.Rule != "learned-idle-timeout" && f.Severity != SeverityError {
					t.Errorf("%s: severity %s while requests fail, want error", f.Rule, f.Severity)
				}
			}
			if fs[0].Severity != tc.severity || !strings.Contains(fs[0].Message, tc.message) {
				t.Errorf("first finding %s %q, want %s containing %q", fs[0].Severity, fs[0].Message, tc.severity, tc.message)
			}
		})
	}
}
