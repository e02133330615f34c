package doctor

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/refserver"
)

// TestDiagnoseProvoked provokes each rule with real traffic through a real
// Client against the reference server, and checks that it, and only it,
// fires.
func TestDiagnoseProvoked(t *testing.T) {
	for _, tc := range []struct {
		rule    string
		opts    refserver.Options
		cfg     func(*warmpool.Config)
		clOpts  []warmpool.Option
		run     func(t *testing.T, c *warmpool.Client, srv *refserver.Server) (host string)
		message string // a fragment of the message
	}{
		{rule: "unread-bodies", run: func(t *testing.T, c *warmpool.Client, srv *refserver.Server) string {
			callEvery(t, 25, 0, false, func() error { return doUnread(c, srv.URL()+"/answer") })
			waitFor(t, "the connections to close", 2*time.Second, func() bool { return c.Stats().Closed == 25 })
			return srv.Addr()
		}, message: "connections are closed after 100 % of responses (25 of 25 requests)"},

		{rule: "server-closed-idle", opts: refserver.Options{IdleTimeout: 20 * time.Millisecond},
			// Learning would add its own finding (see TestDiagnoseFailureRules)
			// once a loaded machine notices a close late enough to learn it.
			cfg: func(c *warmpool.Config) { c.DisableIdleLearning = true },
			run: func(t *testing.T, c *warmpool.Client, srv *refserver.Server) string {
				// One caller: the client must see each close within the gap
				// before its next POST, which is not retried; the gap is
				// wide for a loaded machine.
				callEvery(t, 22, 100*time.Millisecond, false, func() error { return post(c, srv.URL()+"/answer") })
				return srv.Addr()
			}, message: "idle connections before keepalive_expiry (30s) ran out"},

		{rule: "idle-churn", cfg: func(c *warmpool.Config) { c.KeepaliveExpiry = 25 * time.Millisecond },
			run: func(t *testing.T, c *warmpool.Client, srv *refserver.Server) string {
				callEvery(t, 6, 60*time.Millisecond, false, func() error { return runPosts(c, srv.URL()+"/answer?delay=5ms", 4, 1) })
				return srv.Addr()
			}, message: "of requests opened a new connection"},

		{rule: "max-age-churn", cfg: func(c *warmpool.Config) { c.MaxConnectionAge = 20 * time.Millisecond },
			run: func(t *testing.T, c *warmpool.Client, srv *refserver.Server) string {
				// Gaps let the janitor find each connection idle past its
				// age. (Busy POST connections are not retired: see
				// TestMaxAgeRetiresBusyPOSTConnections.)
				callEvery(t, 30, 5*time.Millisecond, false, func() error { return post(c, srv.URL()+"/answer") })
				return srv.Addr()
			}, message: "max_connection_age (20ms) retired"},

		{rule: "pool-waits", cfg: func(c *warmpool.Config) { c.MaxConnections, c.MaxKeepaliveConnections = 2, 2 },
			run: func(t *testing.T, c *warmpool.Client, srv *refserver.Server) string {
				loadPosts(t, c, srv.URL()+"/answer?delay=5ms", 8, 4)
				return srv.Addr()
			}, message: "all max_connections (2) were busy"},

		{rule: "pool-timeouts", opts: refserver.Options{Delay: 300 * time.Millisecond}, cfg: func(c *warmpool.Config) {
			c.MaxConnections, c.MaxKeepaliveConnections = 1, 1
			c.PoolTimeout = 20 * time.Millisecond
		}, run: func(t *testing.T, c *warmpool.Client, srv *refserver.Server) string {
			first := behind(t, c, srv)
			callEvery(t, 3, 0, true, func() error { return post(c, srv.URL()+"/answer") })
			if err := <-first; err != nil {
				t.Fatal(err)
			}
			return srv.Addr()
		}, message: "3 requests failed with ErrPoolTimeout after waiting pool_timeout (20ms)"},

		{rule: "dial-failures", cfg: func(c *warmpool.Config) { c.MaxRetries = -1 },
			run: func(t *testing.T, c *warmpool.Client, _ *refserver.Server) string {
				addr := closedAddr(t)
				callEvery(t, 3, 0, true, func() error { return post(c, "http://"+addr+"/answer") })
				return addr
			}, message: "3 connection attempts were refused"},

		{rule: "dial-failures", opts: refserver.Options{Proto: "tls-h1"},
			clOpts: []warmpool.Option{warmpool.WithTLSConfig(nil)}, // trusts the system roots, not the test server's
			run: func(t *testing.T, c *warmpool.Client, srv *refserver.Server) string {
				callEvery(t, 3, 0, true, func() error { return post(c, srv.URL()+"/answer") })
				return srv.Addr()
			}, message: "3 TLS handshakes failed"},

		{rule: "retry-budget", cfg: func(c *warmpool.Config) {
			c.RetryBackoffFactor = 0.0001
			c.RetryBudgetPercent = 10
			c.RetryBudgetMinPerSecond = -1
		}, run: func(t *testing.T, c *warmpool.Client, srv *refserver.Server) string {
			callEvery(t, 20, 0, true, func() error { return post(c, srv.URL()+"/answer?status=503") })
			return ""
		}, message: "the retry budget refused"},

		{rule: "token-failures", clOpts: []warmpool.Option{warmpool.WithTokenSource(warmpool.TokenSourceFunc(func(context.Context) (warmpool.Token, error) {
			return warmpool.Token{}, errors.New("metadata server unreachable")
		}))}, run: func(t *testing.T, c *warmpool.Client, srv *refserver.Server) string {
			callEvery(t, 3, 0, true, func() error { return post(c, srv.URL()+"/answer") })
			return ""
		}, message: "token fetches failed"},
	} {
		t.Run(tc.rule+"/"+tc.message, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, tc.opts)
			cfg := warmpool.DefaultConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			var c *warmpool.Client
			if tc.clOpts != nil {
				var err error
				if c, err = warmpool.New(cfg, tc.clOpts...); err != nil {
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

// TestDiagnoseHealthy shows every rule silent on a healthy pool under load,
// and on a pool too young to judge.
func TestDiagnoseHealthy(t *testing.T) {
	for _, p := range protos {
		t.Run(p.name, func(t *testing.T) {
			srv := startServer(t, refserver.Options{Proto: p.server})
			cfg := warmpool.DefaultConfig()
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
		c := newClient(t, srv, warmpool.DefaultConfig())
		loadPosts(t, c, srv.URL()+"/answer", 16, 2)
		atRest(t, c, srv)
		if fs := Diagnose(c.Stats(), c.Config()); len(fs) > 0 {
			t.Errorf("findings\n%s\nstats %+v", strings.Join(findingLines(fs), "\n"), c.Stats().HostStats)
		}
	})
	t.Run("too few requests", func(t *testing.T) {
		srv := startServer(t, refserver.Options{})
		c := newClient(t, srv, warmpool.DefaultConfig())
		callEvery(t, minRequests-1, 0, false, func() error { return doUnread(c, srv.URL()+"/answer") })
		if fs := Diagnose(c.Stats(), c.Config()); len(fs) > 0 {
			t.Errorf("%d requests: findings\n%s", minRequests-1, strings.Join(findingLines(fs), "\n"))
		}
	})
}
