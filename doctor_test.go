package warmpool

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/refserver"
)

func findingRules(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Rule)
	}
	return out
}

// callEvery runs n sequential calls of fn, gap apart, failing the test on an
// error unless failing is set.
func callEvery(t testing.TB, n int, gap time.Duration, failing bool, fn func() error) {
	t.Helper()
	for i := range n {
		if i > 0 && gap > 0 {
			time.Sleep(gap)
		}
		if err := fn(); err != nil && !failing {
			t.Fatalf("call %d: %v", i, err)
		}
	}
}

// TestDiagnoseProvoked provokes each rule with real traffic through a real
// Client against the reference server, and checks that it, and only it,
// fires.
func TestDiagnoseProvoked(t *testing.T) {
	for _, tc := range []struct {
		rule    string
		opts    refserver.Options
		cfg     func(*Config)
		clOpts  []Option
		run     func(t *testing.T, c *Client, srv *refserver.Server) (host string)
		message string // a fragment of the message
	}{
		{rule: "unread-bodies", run: func(t *testing.T, c *Client, srv *refserver.Server) string {
			callEvery(t, 25, 0, false, func() error { return doUnread(c, srv.URL()+"/answer") })
			waitFor(t, "the connections to close", 2*time.Second, func() bool { return c.Stats().Closed == 25 })
			return srv.Addr()
		}, message: "connections are closed after 100 % of responses (25 of 25 requests)"},

		{rule: "server-closed-idle", opts: refserver.Options{IdleTimeout: 20 * time.Millisecond},
			// Learning would add its own finding (see TestDiagnoseFailureRules)
			// once a loaded machine notices a close late enough to learn it.
			cfg: func(c *Config) { c.DisableIdleLearning = true },
			run: func(t *testing.T, c *Client, srv *refserver.Server) string {
				// One caller: the client must see each close within the gap
				// before its next POST, which is not retried; the gap is
				// wide for a loaded machine.
				callEvery(t, 22, 100*time.Millisecond, false, func() error { return post(c, srv.URL()+"/answer") })
				return srv.Addr()
			}, message: "idle connections before keepalive_expiry (30s) ran out"},

		{rule: "idle-churn", cfg: func(c *Config) { c.KeepaliveExpiry = 25 * time.Millisecond },
			run: func(t *testing.T, c *Client, srv *refserver.Server) string {
				callEvery(t, 6, 60*time.Millisecond, false, func() error { return runPosts(c, srv.URL()+"/answer?delay=5ms", 4, 1) })
				return srv.Addr()
			}, message: "of requests opened a new connection"},

		{rule: "max-age-churn", cfg: func(c *Config) { c.MaxConnectionAge = 20 * time.Millisecond },
			run: func(t *testing.T, c *Client, srv *refserver.Server) string {
				// Gaps let the janitor find each connection idle past its
				// age. (Busy POST connections are not retired: see
				// TestMaxAgeRetiresBusyPOSTConnections.)
				callEvery(t, 30, 5*time.Millisecond, false, func() error { return post(c, srv.URL()+"/answer") })
				return srv.Addr()
			}, message: "max_connection_age (20ms) retired"},

		{rule: "pool-waits", cfg: func(c *Config) { c.MaxConnections, c.MaxKeepaliveConnections = 2, 2 },
			run: func(t *testing.T, c *Client, srv *refserver.Server) string {
				loadPosts(t, c, srv.URL()+"/answer?delay=5ms", 8, 4)
				return srv.Addr()
			}, message: "all max_connections (2) were busy"},

		{rule: "pool-timeouts", opts: refserver.Options{Delay: 300 * time.Millisecond}, cfg: func(c *Config) {
			c.MaxConnections, c.MaxKeepaliveConnections = 1, 1
			c.PoolTimeout = 20 * time.Millisecond
		}, run: func(t *testing.T, c *Client, srv *refserver.Server) string {
			first := behind(t, c, srv)
			callEvery(t, 3, 0, true, func() error { return post(c, srv.URL()+"/answer") })
			if err := <-first; err != nil {
				t.Fatal(err)
			}
			return srv.Addr()
		}, message: "3 requests failed with ErrPoolTimeout after waiting pool_timeout (20ms)"},

		{rule: "dial-failures", cfg: func(c *Config) { c.MaxRetries = -1 },
			run: func(t *testing.T, c *Client, _ *refserver.Server) string {
				addr := closedAddr(t)
				callEvery(t, 3, 0, true, func() error { return post(c, "http://"+addr+"/answer") })
				return addr
			}, message: "3 connection attempts were refused"},

		{rule: "dial-failures", opts: refserver.Options{Proto: "tls-h1"},
			clOpts: []Option{WithTLSConfig(nil)}, // trusts the system roots, not the test server's
			run: func(t *testing.T, c *Client, srv *refserver.Server) string {
				callEvery(t, 3, 0, true, func() error { return post(c, srv.URL()+"/answer") })
				return srv.Addr()
			}, message: "3 TLS handshakes failed"},

		{rule: "retry-budget", cfg: func(c *Config) {
			c.RetryBackoffFactor = 0.0001
			c.RetryBudgetPercent = 10
			c.RetryBudgetMinPerSecond = -1
		}, run: func(t *testing.T, c *Client, srv *refserver.Server) string {
			callEvery(t, 20, 0, true, func() error { return post(c, srv.URL()+"/answer?status=503") })
			return ""
		}, message: "the retry budget refused"},

		{rule: "token-failures", clOpts: []Option{WithTokenSource(TokenSourceFunc(func(context.Context) (Token, error) {
			return Token{}, errors.New("metadata server unreachable")
		}))}, run: func(t *testing.T, c *Client, srv *refserver.Server) string {
			callEvery(t, 3, 0, true, func() error { return post(c, srv.URL()+"/answer") })
			return ""
		}, message: "token fetches failed"},
	} {
		t.Run(tc.rule+"/"+tc.message, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, tc.opts)
			cfg := DefaultConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			var c *Client
			if tc.clOpts != nil {
				var err error
				if c, err = New(cfg, tc.clOpts...); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
			} else {
				c = newClient(t, srv, cfg)
			}
			host := tc.run(t, c, srv)

			fs := Diagnose(c.Stats(), c.Config())
			if got := findingRules(fs); !slices.Equal(got, []string{tc.rule}) {
				t.Fatalf("findings %v, want just %s; stats %+v\n%s", got, tc.rule, c.Stats().HostStats, strings.Join(findingLines(fs), "\n"))
			}
			f := fs[0]
			if f.Host != host || !strings.Contains(f.Message, tc.message) || f.Fix == "" || f.Value <= 0 {
				t.Errorf("finding %+v, want host %q, a message with %q, a fix and a value", f, host, tc.message)
			}
			t.Log(f)
		})
	}
}

func findingLines(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.String())
	}
	return out
}

// TestDiagnoseHealthy shows every rule silent on a healthy pool under load,
// and on a pool too young to judge.
func TestDiagnoseHealthy(t *testing.T) {
	for _, p := range protos {
		t.Run(p.name, func(t *testing.T) {
			srv := startServer(t, refserver.Options{Proto: p.server})
			cfg := DefaultConfig()
			cfg.DisableHTTP2 = !p.http2
			c := newClient(t, srv, cfg)
			loadPosts(t, c, srv.URL()+"/answer", 16, 25)
			if fs := Diagnose(c.Stats(), c.Config()); len(fs) > 0 {
				t.Errorf("healthy pool: findings\n%s", strings.Join(findingLines(fs), "\n"))
			}
		})
	}
	t.Run("tls-http2 burst", func(t *testing.T) {
		// Concurrent first requests each dial before ALPN says HTTP/2;
		// net/http then closes all but one connection, unused.
		srv := startServer(t, refserver.Options{Proto: "tls"})
		c := newClient(t, srv, DefaultConfig())
		loadPosts(t, c, srv.URL()+"/answer", 16, 2)
		checkAtRest(t, c, srv)
		if fs := Diagnose(c.Stats(), c.Config()); len(fs) > 0 {
			t.Errorf("findings\n%s\nstats %+v", strings.Join(findingLines(fs), "\n"), c.Stats().HostStats)
		}
	})
	t.Run("too few requests", func(t *testing.T) {
		srv := startServer(t, refserver.Options{})
		c := newClient(t, srv, DefaultConfig())
		callEvery(t, minRequests-1, 0, false, func() error { return doUnread(c, srv.URL()+"/answer") })
		if fs := Diagnose(c.Stats(), c.Config()); len(fs) > 0 {
			t.Errorf("%d requests: findings\n%s", minRequests-1, strings.Join(findingLines(fs), "\n"))
		}
	})
}

// TestDiagnoseThresholds checks each rule on either side of its threshold,
// and the rules that loopback traffic cannot provoke (DNS failures, connect
// timeouts), on made-up snapshots.
func TestDiagnoseThresholds(t *testing.T) {
	base := HostStats{Requests: 100, Reused: 90}
	with := func(f func(*HostStats)) HostStats { h := base; f(&h); return h }
	for _, tc := range []struct {
		name    string
		h       HostStats
		rule    string // "" for none
		message string
	}{
		{"healthy", base, "", ""},
		{"waits at 5 %", with(func(h *HostStats) { h.Waits, h.WaitTime = 5, 200*time.Millisecond }), "pool-waits",
			"requests waited for a connection 5 % of the time (5 waits, mean 40ms): all max_connections (100) were busy"},
		{"waits under 5 %", with(func(h *HostStats) { h.Waits, h.WaitTime = 4, 200*time.Millisecond }), "", ""},
		{"a pool timeout", with(func(h *HostStats) { h.PoolTimeouts = 1 }), "pool-timeouts",
			"1 requests failed with ErrPoolTimeout after waiting pool_timeout (5s)"},
		{"unread at 10 %", with(func(h *HostStats) { h.ClosedBy.Other = 10 }), "unread-bodies", "after 10 % of responses (10 of 100 requests)"},
		{"unread under 10 %", with(func(h *HostStats) { h.ClosedBy.Other = 9 }), "", ""},
		{"HTTP/2 duplicates dropped", HostStats{Requests: 32, Reused: 31, ClosedBy: CloseReasons{Other: 15}}, "", ""},
		{"unread, too few requests", HostStats{Requests: minRequests - 1, ClosedBy: CloseReasons{Other: minRequests - 1}}, "", ""},
		{"server at 5 %", with(func(h *HostStats) { h.ClosedBy.Server = 5 }), "server-closed-idle",
			"the server closed 5 idle connections before keepalive_expiry (30s) ran out, making 5 % of requests open a new one"},
		{"server under 5 %", with(func(h *HostStats) { h.ClosedBy.Server = 4 }), "", ""},
		{"idle expiry", with(func(h *HostStats) { h.ClosedBy.IdleExpiry = 10 }), "idle-churn",
			"10 % of requests opened a new connection: 10 connections sat idle for keepalive_expiry (30s)"},
		{"trim", with(func(h *HostStats) { h.ClosedBy.Trim = 10 }), "idle-churn", "trimmed because fewer requests were in flight over the last 3s (a tenth of keepalive_expiry, at least 1s), and max_keepalive_connections (20)"},
		{"idle under 10 %", with(func(h *HostStats) { h.ClosedBy.Trim, h.ClosedBy.IdleExpiry = 4, 5 }), "", ""},
		{"max age", with(func(h *HostStats) { h.ClosedBy.MaxAge = 10 }), "max-age-churn", "max_connection_age (0s) retired 10 connections, making 10 % of requests open a new one"},
		{"max age under 10 %", with(func(h *HostStats) { h.ClosedBy.MaxAge = 9 }), "", ""},
		{"DNS", with(func(h *HostStats) { h.DialFailures.DNS = 3 }), "dial-failures", "3 name lookups failed"},
		{"DNS, twice", with(func(h *HostStats) { h.DialFailures.DNS = 2 }), "dial-failures", "2 name lookups failed"}, // any failure is a finding
		{"connect timeouts", HostStats{DialFailures: DialFailures{Timeout: 4}}, "dial-failures",
			"4 connection attempts timed out after connection_timeout (10s)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Stats{HostStats: tc.h, Hosts: map[string]HostStats{"backend:443": tc.h}}
			fs := Diagnose(s, Config{}) // zero fields count as their defaults
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
	bad := HostStats{Requests: 100, PoolTimeouts: 2, DialFailures: DialFailures{Refused: 3}}
	s := Stats{
		Hosts:              map[string]HostStats{"b:80": bad, "a:80": bad, "c:80": {Requests: 100}},
		BudgetRefusals:     7,
		Retries:            12,
		TokenFetches:       4,
		TokenFetchFailures: 1,
	}
	cfg := DefaultConfig()
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

func ExampleDiagnose() {
	// In a service: warmpool.Diagnose(client.Stats(), client.Config()).
	s := Stats{Hosts: map[string]HostStats{
		"backend:443": {Requests: 1000, Reused: 850, Created: 150, ClosedBy: CloseReasons{Server: 140}},
	}}
	for _, f := range Diagnose(s, DefaultConfig()) {
		fmt.Println(f)
	}
	// Output:
	// warning: backend:443: the server closed 140 idle connections before keepalive_expiry (30s) ran out, making 14 % of requests open a new one: its idle timeout is shorter, and a request sent as it closes one can fail; fix: lower keepalive_expiry below the server's idle timeout (or raise the server's)
}
