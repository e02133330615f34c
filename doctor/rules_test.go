package doctor

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warmpool/warmpool"
)

// TestDiagnoseThresholds checks each rule on either side of its threshold,
// and the rules that loopback traffic cannot provoke (DNS failures, connect
// timeouts), on made-up snapshots.
func TestDiagnoseThresholds(t *testing.T) {
	base := warmpool.HostStats{Requests: 100, Reused: 90}
	with := func(f func(*warmpool.HostStats)) warmpool.HostStats { h := base; f(&h); return h }
	for _, tc := range []struct {
		name    string
		h       warmpool.HostStats
		rule    string // "" for none
		message string
	}{
		{"healthy", base, "", ""},
		{"waits at 5 %", with(func(h *warmpool.HostStats) { h.Waits, h.WaitTime = 5, 200*time.Millisecond }), "pool-waits",
			"requests waited for a connection 5 % of the time (5 waits, mean 40ms): all max_connections (100) were busy"},
		{"waits under 5 %", with(func(h *warmpool.HostStats) { h.Waits, h.WaitTime = 4, 200*time.Millisecond }), "", ""},
		{"a pool timeout", with(func(h *warmpool.HostStats) { h.PoolTimeouts = 1 }), "pool-timeouts",
			"1 requests failed with ErrPoolTimeout after waiting pool_timeout (5s)"},
		{"unread at 10 %", with(func(h *warmpool.HostStats) { h.ClosedBy.Other = 10 }), "unread-bodies", "after 10 % of responses (10 of 100 requests)"},
		{"unread under 10 %", with(func(h *warmpool.HostStats) { h.ClosedBy.Other = 9 }), "", ""},
		{"HTTP/2 duplicates dropped", warmpool.HostStats{Requests: 32, Reused: 31, ClosedBy: warmpool.CloseReasons{Other: 15}}, "", ""},
		{"unread, too few requests", warmpool.HostStats{Requests: minRequests - 1, ClosedBy: warmpool.CloseReasons{Other: minRequests - 1}}, "", ""},
		{"server at 5 %", with(func(h *warmpool.HostStats) { h.ClosedBy.Server = 5 }), "server-closed-idle",
			"the server closed 5 idle connections before keepalive_expiry (30s) ran out, making 5 % of requests open a new one"},
		{"server under 5 %", with(func(h *warmpool.HostStats) { h.ClosedBy.Server = 4 }), "", ""},
		{"idle expiry", with(func(h *warmpool.HostStats) { h.ClosedBy.IdleExpiry = 10 }), "idle-churn",
			"10 % of requests opened a new connection: 10 connections sat idle for keepalive_expiry (30s)"},
		{"trim", with(func(h *warmpool.HostStats) { h.ClosedBy.Trim = 10 }), "idle-churn", "trimmed because fewer requests were in flight over the last 3s (a tenth of keepalive_expiry, at least 1s), and max_keepalive_connections (20)"},
		{"idle under 10 %", with(func(h *warmpool.HostStats) { h.ClosedBy.Trim, h.ClosedBy.IdleExpiry = 4, 5 }), "", ""},
		{"max age", with(func(h *warmpool.HostStats) { h.ClosedBy.MaxAge = 10 }), "max-age-churn", "max_connection_age (0s) retired 10 connections, making 10 % of requests open a new one"},
		{"max age under 10 %", with(func(h *warmpool.HostStats) { h.ClosedBy.MaxAge = 9 }), "", ""},
		{"DNS", with(func(h *warmpool.HostStats) { h.DialFailures.DNS = 3 }), "dial-failures", "3 name lookups failed"},
		{"DNS, twice", with(func(h *warmpool.HostStats) { h.DialFailures.DNS = 2 }), "dial-failures", "2 name lookups failed"}, // any failure is a finding
		{"connect timeouts", warmpool.HostStats{DialFailures: warmpool.DialFailures{Timeout: 4}}, "dial-failures",
			"4 connection attempts timed out after connection_timeout (10s)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := warmpool.Stats{HostStats: tc.h, Hosts: map[string]warmpool.HostStats{"backend:443": tc.h}}
			fs := Diagnose(s, warmpool.Config{}) // zero fields count as their defaults
			if tc.rule == "" {
				if len(fs) > 0 {
					t.Errorf("findings\n%s\nwant none", strings.Join(findingLines(fs), "\n"))
				}
				return
			}
			if len(fs) != 1 || fs[0].Rule != tc.rule || fs[0].Host != "backend:443" || !strings.Contains(fs[0].Message, tc.message) {
				t.Errorf("findings\n%s\nwant one %s for backend:443 containing %q", strings.Join(findingLines(fs), "\n"), tc.rule, tc.message)
			}
		})
	}
}

func TestDiagnoseOrderAndClientRules(t *testing.T) {
	bad := warmpool.HostStats{Requests: 100, PoolTimeouts: 2, DialFailures: warmpool.DialFailures{Refused: 3}}
	s := warmpool.Stats{
		Hosts:              map[string]warmpool.HostStats{"b:80": bad, "a:80": bad, "c:80": {Requests: 100}},
		BudgetRefusals:     7,
		Retries:            12,
		TokenFetches:       4,
		TokenFetchFailures: 1,
	}
	cfg := warmpool.DefaultConfig()
	var got []string
	for _, f := range Diagnose(s, cfg) {
		got = append(got, f.Host+" "+f.Rule+" "+string(f.Severity))
	}
	want := []string{
		"a:80 pool-timeouts error", "a:80 dial-failures error",
		"b:80 pool-timeouts error", "b:80 dial-failures error",
		" retry-budget error", " token-failures error",
	}
	if !slices.Equal(got, want) {
		t.Errorf("findings\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	f := Finding{Severity: SeverityWarning, Host: "a:80", Message: "it is slow", Fix: "make it fast"}
	if got, want := f.String(), "warning: a:80: it is slow; fix: make it fast"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	f.Host = ""
	if got, want := f.String(), "warning: it is slow; fix: make it fast"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// TestDiagnoseFailureRules checks the rules on failed requests and the
// server's connection habits, on made-up snapshots: a failure of any kind is
// an error finding, and a pool with none and nothing else wrong is healthy.
func TestDiagnoseFailureRules(t *testing.T) {
	base := warmpool.HostStats{Protocol: "HTTP/1.1", Requests: 100, Reused: 90, Created: 10}
	with := func(f func(*warmpool.HostStats)) warmpool.HostStats { h := base; f(&h); return h }
	for _, tc := range []struct {
		name     string
		h        warmpool.HostStats
		rules    []string // in order; none for a healthy pool
		severity Severity
		message  string
	}{
		{"healthy", base, nil, "", ""},
		{"one idle race", with(func(h *warmpool.HostStats) { h.Failures, h.FailuresByKind = 1, map[string]int64{"idle_race": 1} }),
			[]string{"idle-race"}, SeverityError, "1 requests failed because the server closed the idle pooled connection"},
		{"idle race, then learned", with(func(h *warmpool.HostStats) {
			h.Failures, h.FailuresByKind = 2, map[string]int64{"idle_race": 2}
			h.LearnedIdleTimeout, h.LearnedIdleTimeoutFrom = 5*time.Second, "server close"
		}), []string{"idle-race", "learned-idle-timeout"}, SeverityError, "warmpool has since learned it (5s, from the server close)"},
		{"resets and timeouts", with(func(h *warmpool.HostStats) {
			h.Failures, h.FailuresByKind = 3, map[string]int64{"reset": 2, "timeout": 1}
		}),
			[]string{"failed-requests"}, SeverityError, "3 attempts failed: 1 timeout, 2 reset"},
		{"learned timeout alone", with(func(h *warmpool.HostStats) {
			h.LearnedIdleTimeout, h.LearnedIdleTimeoutFrom = time.Second, "keep-alive header"
		}),
			[]string{"learned-idle-timeout"}, SeverityWarning, "the server closes connections idle for 1s (learned from the keep-alive header)"},
		{"GOAWAY churn", with(func(h *warmpool.HostStats) { h.Protocol, h.ClosedBy.Server = "HTTP/2", 10 }),
			[]string{"goaway-churn"}, SeverityWarning, "the server ended 10 HTTP/2 connections in 100 requests (one every 10)"},
		{"GOAWAY rarely", with(func(h *warmpool.HostStats) {
			h.Protocol, h.Requests, h.Reused, h.ClosedBy.Server = "HTTP/2", 10000, 9990, 5
		}),
			nil, "", ""},
		{"unused dials", with(func(h *warmpool.HostStats) { h.Created, h.ClosedBy.Unused = 20, 5 }),
			[]string{"unused-dials"}, SeverityWarning, "5 of 20 connections were dialed and closed without serving a request"},
		{"server closes idle, requests fail", with(func(h *warmpool.HostStats) {
			h.ClosedBy.Server = 10
			h.Failures, h.FailuresByKind = 1, map[string]int64{"idle_race": 1}
		}), []string{"idle-race", "server-closed-idle"}, SeverityError, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := warmpool.Stats{HostStats: tc.h, Hosts: map[string]warmpool.HostStats{"backend:443": tc.h}}
			fs := Diagnose(s, warmpool.Config{})
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

func TestEndpointRules(t *testing.T) {
	ep := func(requests, ejections int64, state string) warmpool.HostStats {
		return warmpool.HostStats{HostName: "api.test", EndpointState: state, Requests: requests, Ejections: ejections}
	}
	fleet := func(hosts ...warmpool.HostStats) warmpool.Stats {
		s := warmpool.Stats{Hosts: map[string]warmpool.HostStats{}}
		for i, h := range hosts {
			s.Hosts["10.0.0."+string(rune('1'+i))+":443"] = h
		}
		return s
	}
	tests := []struct {
		name     string
		stats    warmpool.Stats
		balancer string
		rule     string // "" for no endpoint finding
		message  string
	}{
		{"even", fleet(ep(100, 0, "active"), ep(110, 0, "active"), ep(95, 0, "active")), "p2c", "", ""},
		{"pinned by first", fleet(ep(300, 0, "active"), ep(0, 0, "active"), ep(0, 0, "active")), "first",
			"endpoint-pinned", "10.0.0.1:443 took 100 % of the requests to api.test:443 while 2 other endpoints exist (balancer first)"},
		{"skewed", fleet(ep(200, 0, "active"), ep(60, 0, "active"), ep(40, 0, "active")), "p2c",
			"endpoint-skew", "10.0.0.1:443 took 67 %, 2.0× an even share of 33 %, and 10.0.0.3:443 only 13 %"},
		{"removed endpoints do not count", fleet(ep(200, 0, "active"), ep(190, 0, "active"), ep(5, 0, "removed")), "p2c", "", ""},
		{"too few requests", fleet(ep(30, 0, "active"), ep(0, 0, "active")), "first", "", ""},
		{"frequent ejections", fleet(ep(100, 0, "active"), ep(90, 3, "ejected"), ep(100, 0, "active")), "p2c",
			"frequent-ejections", "endpoint 10.0.0.2:443 of api.test:443 was ejected 3 times after 5 failures in a row"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []Finding
			for _, f := range Diagnose(tt.stats, warmpool.Config{Balancer: tt.balancer}) {
				if strings.HasPrefix(f.Rule, "endpoint-") || f.Rule == "frequent-ejections" {
					got = append(got, f)
				}
			}
			if tt.rule == "" {
				if len(got) > 0 {
					t.Errorf("got %v, want no endpoint finding", got)
				}
				return
			}
			if len(got) != 1 || got[0].Rule != tt.rule || !strings.Contains(got[0].Message, tt.message) {
				t.Errorf("got %v, want one %s finding containing %q", got, tt.rule, tt.message)
			}
		})
	}
}
