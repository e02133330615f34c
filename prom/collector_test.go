package prom

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/refserver"
)

func startServer(t testing.TB, opts refserver.Options) *refserver.Server {
	t.Helper()
	srv, err := refserver.New(opts)
	if err != nil {
		t.Fatalf("refserver.New: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// port is the port of a "127.0.0.1:port" address, as server_port shows it.
func port(t testing.TB, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newClient(t testing.TB, cfg warmpool.Config, opts ...warmpool.Option) *warmpool.Client {
	t.Helper()
	c, err := warmpool.New(cfg, opts...)
	if err != nil {
		t.Fatalf("warmpool.New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// send POSTs a small JSON body to url and reads the answer to the end.
func send(c *warmpool.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, strings.NewReader(`{"question":"?"}`))
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

func mustSend(t testing.TB, c *warmpool.Client, url string, n int) {
	t.Helper()
	for i := range n {
		if _, err := send(c, url); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
}

// poolMetrics is the exposition of NewCollector for one host on 127.0.0.1
// with every counter the test cannot predict at zero; %[1]s is the port.
const poolMetrics = `
# HELP warmpool_connection_wait_seconds_total Time request attempts spent waiting for a connection.
# TYPE warmpool_connection_wait_seconds_total counter
warmpool_connection_wait_seconds_total{endpoint="",server_address="127.0.0.1",server_port="%[1]s"} 0
# HELP warmpool_connection_waits_total Request attempts that had to wait for a connection.
# TYPE warmpool_connection_waits_total counter
warmpool_connection_waits_total{endpoint="",server_address="127.0.0.1",server_port="%[1]s"} 0
# HELP warmpool_connections_closed_total Connections closed, by reason.
# TYPE warmpool_connections_closed_total counter
warmpool_connections_closed_total{endpoint="",server_address="127.0.0.1",server_port="%[1]s",warmpool_close_reason="client"} %[4]d
warmpool_connections_closed_total{endpoint="",server_address="127.0.0.1",server_port="%[1]s",warmpool_close_reason="error"} 0
warmpool_connections_closed_total{endpoint="",server_address="127.0.0.1",server_port="%[1]s",warmpool_close_reason="idle_expiry"} 0
warmpool_connections_closed_total{endpoint="",server_address="127.0.0.1",server_port="%[1]s",warmpool_close_reason="max_age"} 0
warmpool_connections_closed_total{endpoint="",server_address="127.0.0.1",server_port="%[1]s",warmpool_close_reason="other"} 0
warmpool_connections_closed_total{endpoint="",server_address="127.0.0.1",server_port="%[1]s",warmpool_close_reason="server"} 0
warmpool_connections_closed_total{endpoint="",server_address="127.0.0.1",server_port="%[1]s",warmpool_close_reason="trim"} 0
warmpool_connections_closed_total{endpoint="",server_address="127.0.0.1",server_port="%[1]s",warmpool_close_reason="unused"} 0
warmpool_connections_closed_total{endpoint="",server_address="127.0.0.1",server_port="%[1]s",warmpool_close_reason="learned_idle"} 0
# HELP warmpool_connections_created_total Connections opened.
# TYPE warmpool_connections_created_total counter
warmpool_connections_created_total{endpoint="",server_address="127.0.0.1",server_port="%[1]s"} 1
# HELP warmpool_dial_failures_total Failed attempts to open a connection, by kind.
# TYPE warmpool_dial_failures_total counter
warmpool_dial_failures_total{endpoint="",server_address="127.0.0.1",server_port="%[1]s",warmpool_dial_failure_kind="dns"} 0
warmpool_dial_failures_total{endpoint="",server_address="127.0.0.1",server_port="%[1]s",warmpool_dial_failure_kind="other"} 0
warmpool_dial_failures_total{endpoint="",server_address="127.0.0.1",server_port="%[1]s",warmpool_dial_failure_kind="refused"} 0
warmpool_dial_failures_total{endpoint="",server_address="127.0.0.1",server_port="%[1]s",warmpool_dial_failure_kind="timeout"} 0
warmpool_dial_failures_total{endpoint="",server_address="127.0.0.1",server_port="%[1]s",warmpool_dial_failure_kind="tls"} 0
# HELP warmpool_dialing_connections Connections being dialed now.
# TYPE warmpool_dialing_connections gauge
warmpool_dialing_connections{endpoint="",server_address="127.0.0.1",server_port="%[1]s"} 0
# HELP warmpool_open_connections Connections open now, by state: active (serving a request) or idle.
# TYPE warmpool_open_connections gauge
warmpool_open_connections{endpoint="",http_connection_state="active",server_address="127.0.0.1",server_port="%[1]s"} 0
warmpool_open_connections{endpoint="",http_connection_state="idle",server_address="127.0.0.1",server_port="%[1]s"} %[5]d
# HELP warmpool_pool_timeouts_total Request attempts that gave up waiting for a connection after pool_timeout.
# TYPE warmpool_pool_timeouts_total counter
warmpool_pool_timeouts_total{endpoint="",server_address="127.0.0.1",server_port="%[1]s"} 0
# HELP warmpool_requests_in_flight Request attempts between sending and their response body being done.
# TYPE warmpool_requests_in_flight gauge
warmpool_requests_in_flight{endpoint="",server_address="127.0.0.1",server_port="%[1]s"} 0
# HELP warmpool_attempts_reused_total Request attempts served on a connection that had served before.
# TYPE warmpool_attempts_reused_total counter
warmpool_attempts_reused_total{endpoint="",server_address="127.0.0.1",server_port="%[1]s"} %[3]d
# HELP warmpool_attempts_total Request attempts that got a connection, retries included.
# TYPE warmpool_attempts_total counter
warmpool_attempts_total{endpoint="",server_address="127.0.0.1",server_port="%[1]s"} %[2]d
# HELP warmpool_requests_waiting Request attempts waiting now for a connection, all max_connections being busy.
# TYPE warmpool_requests_waiting gauge
warmpool_requests_waiting{endpoint="",server_address="127.0.0.1",server_port="%[1]s"} 0
# HELP warmpool_retries_total Request attempts after the first.
# TYPE warmpool_retries_total counter
warmpool_retries_total 0
# HELP warmpool_retry_budget_refusals_total Retries refused by the retry budget.
# TYPE warmpool_retry_budget_refusals_total counter
warmpool_retry_budget_refusals_total 0
# HELP warmpool_tls_handshake_seconds_total Time spent in completed TLS handshakes.
# TYPE warmpool_tls_handshake_seconds_total counter
warmpool_tls_handshake_seconds_total{endpoint="",server_address="127.0.0.1",server_port="%[1]s"} 0
# HELP warmpool_tls_handshakes_total Completed TLS handshakes.
# TYPE warmpool_tls_handshakes_total counter
warmpool_tls_handshakes_total{endpoint="",server_address="127.0.0.1",server_port="%[1]s"} 0
# HELP warmpool_token_fetch_failures_total Calls to the token source that failed.
# TYPE warmpool_token_fetch_failures_total counter
warmpool_token_fetch_failures_total 0
# HELP warmpool_token_fetches_total Calls to the token source.
# TYPE warmpool_token_fetches_total counter
warmpool_token_fetches_total 0
# HELP warmpool_attempt_failures_total Request attempts that ended in an error, by warmpool.ErrorKind.
# TYPE warmpool_attempt_failures_total counter
warmpool_attempt_failures_total{endpoint="",error_type="canceled",server_address="127.0.0.1",server_port="%[1]s"} 0
warmpool_attempt_failures_total{endpoint="",error_type="certificate",server_address="127.0.0.1",server_port="%[1]s"} 0
warmpool_attempt_failures_total{endpoint="",error_type="circuit_open",server_address="127.0.0.1",server_port="%[1]s"} 0
warmpool_attempt_failures_total{endpoint="",error_type="closed",server_address="127.0.0.1",server_port="%[1]s"} 0
warmpool_attempt_failures_total{endpoint="",error_type="content_type",server_address="127.0.0.1",server_port="%[1]s"} 0
warmpool_attempt_failures_total{endpoint="",error_type="dns",server_address="127.0.0.1",server_port="%[1]s"} 0
warmpool_attempt_failures_total{endpoint="",error_type="idle_race",server_address="127.0.0.1",server_port="%[1]s"} 0
warmpool_attempt_failures_total{endpoint="",error_type="insecure_token",server_address="127.0.0.1",server_port="%[1]s"} 0
warmpool_attempt_failures_total{endpoint="",error_type="other",server_address="127.0.0.1",server_port="%[1]s"} 0
warmpool_attempt_failures_total{endpoint="",error_type="overloaded",server_address="127.0.0.1",server_port="%[1]s"} 0
warmpool_attempt_failures_total{endpoint="",error_type="pool_timeout",server_address="127.0.0.1",server_port="%[1]s"} 0
warmpool_attempt_failures_total{endpoint="",error_type="refused",server_address="127.0.0.1",server_port="%[1]s"} 0
warmpool_attempt_failures_total{endpoint="",error_type="reset",server_address="127.0.0.1",server_port="%[1]s"} 0
warmpool_attempt_failures_total{endpoint="",error_type="status",server_address="127.0.0.1",server_port="%[1]s"} 0
warmpool_attempt_failures_total{endpoint="",error_type="timeout",server_address="127.0.0.1",server_port="%[1]s"} 0
warmpool_attempt_failures_total{endpoint="",error_type="tls",server_address="127.0.0.1",server_port="%[1]s"} 0
warmpool_attempt_failures_total{endpoint="",error_type="token",server_address="127.0.0.1",server_port="%[1]s"} 0
warmpool_attempt_failures_total{endpoint="",error_type="too_large",server_address="127.0.0.1",server_port="%[1]s"} 0
# HELP warmpool_learned_idle_timeout_seconds The server's idle timeout as warmpool learned it; 0 while none is known. Idle connections close a margin before it.
# TYPE warmpool_learned_idle_timeout_seconds gauge
warmpool_learned_idle_timeout_seconds{endpoint="",server_address="127.0.0.1",server_port="%[1]s"} 0
# HELP warmpool_request_failures_total Requests that ended in an error (not counting answers with a non-2xx status).
# TYPE warmpool_request_failures_total counter
warmpool_request_failures_total 0
# HELP warmpool_circuit_opens_total Times the circuit breaker opened.
# TYPE warmpool_circuit_opens_total counter
warmpool_circuit_opens_total{endpoint="",server_address="127.0.0.1",server_port="%[1]s"} 0
# HELP warmpool_circuit_state 1 for the circuit breaker's state now: closed, open or half_open.
# TYPE warmpool_circuit_state gauge
warmpool_circuit_state{endpoint="",server_address="127.0.0.1",server_port="%[1]s",state="closed"} 1
warmpool_circuit_state{endpoint="",server_address="127.0.0.1",server_port="%[1]s",state="half_open"} 0
warmpool_circuit_state{endpoint="",server_address="127.0.0.1",server_port="%[1]s",state="open"} 0
# HELP warmpool_concurrency_limit The limit on requests in flight now (concurrency_limit); 0: none.
# TYPE warmpool_concurrency_limit gauge
warmpool_concurrency_limit{endpoint="",server_address="127.0.0.1",server_port="%[1]s"} 0
# HELP warmpool_hedge_wins_total Hedged requests whose answer came first.
# TYPE warmpool_hedge_wins_total counter
warmpool_hedge_wins_total 0
# HELP warmpool_hedges_total Hedged requests sent (hedge_after).
# TYPE warmpool_hedges_total counter
warmpool_hedges_total 0
# HELP warmpool_limit_wait_seconds_total Time requests spent queued at the concurrency limit.
# TYPE warmpool_limit_wait_seconds_total counter
warmpool_limit_wait_seconds_total{endpoint="",server_address="127.0.0.1",server_port="%[1]s"} 0
# HELP warmpool_limit_waiting Requests queued now at the concurrency limit.
# TYPE warmpool_limit_waiting gauge
warmpool_limit_waiting{endpoint="",server_address="127.0.0.1",server_port="%[1]s"} 0
# HELP warmpool_limit_waits_total Requests that queued at the concurrency limit.
# TYPE warmpool_limit_waits_total counter
warmpool_limit_waits_total{endpoint="",server_address="127.0.0.1",server_port="%[1]s"} 0
# HELP warmpool_requests_rejected_total Requests not sent: over the concurrency limit (overloaded), by client-side throttling (throttled), by an open circuit breaker (circuit_open), or with less time left than the fastest recent answer (deadline).
# TYPE warmpool_requests_rejected_total counter
warmpool_requests_rejected_total{endpoint="",reason="circuit_open",server_address="127.0.0.1",server_port="%[1]s"} 0
warmpool_requests_rejected_total{endpoint="",reason="deadline",server_address="127.0.0.1",server_port="%[1]s"} 0
warmpool_requests_rejected_total{endpoint="",reason="overloaded",server_address="127.0.0.1",server_port="%[1]s"} 0
warmpool_requests_rejected_total{endpoint="",reason="throttled",server_address="127.0.0.1",server_port="%[1]s"} 0
# HELP warmpool_requests_total Requests made (Do, the JSON calls, HTTPClient), each counted once however many attempts it took.
# TYPE warmpool_requests_total counter
warmpool_requests_total %[2]d
`

func TestCollectorExportsStats(t *testing.T) {
	srv := startServer(t, refserver.Options{})
	c := newClient(t, warmpool.DefaultConfig())
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(c))

	mustSend(t, c, srv.URL()+"/answer", 10)
	want := fmt.Sprintf(poolMetrics, port(t, srv.Addr()), 10, 9, 0, 1)
	// Every metric but the recent latency, whose values the machine decides.
	names := metricNames(want)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Errorf("after 10 requests:\n%v", err)
	}
	if n := testutil.CollectAndCount(NewCollector(c), "warmpool_recent_latency_seconds"); n != 4 {
		t.Errorf("%d recent latency series, want 4 quantiles", n)
	}

	c.Close()
	want = fmt.Sprintf(poolMetrics, port(t, srv.Addr()), 10, 9, 1, 0)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Errorf("after Close:\n%v", err)
	}
}

// metricNames lists the names of the metrics an exposition text declares.
func metricNames(text string) []string {
	var names []string
	for line := range strings.Lines(text) {
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			names = append(names, strings.Fields(rest)[0])
		}
	}
	return names
}

func TestCollectorHasNoHostsBeforeTheFirstRequest(t *testing.T) {
	c := newClient(t, warmpool.DefaultConfig())
	// Only the eight client-wide counters.
	if n := testutil.CollectAndCount(NewCollector(c)); n != 8 {
		t.Errorf("collected %d metrics from an unused client, want 8", n)
	}
}

func TestMetricsPassPromlint(t *testing.T) {
	srv := startServer(t, refserver.Options{})
	reqs := NewRequestCollector()
	c := newClient(t, warmpool.DefaultConfig(), warmpool.WithHooks(reqs.Hooks()))
	mustSend(t, c, srv.URL()+"/answer", 3)
	for name, col := range map[string]prometheus.Collector{
		"NewCollector":        NewCollector(c),
		"NewRequestCollector": reqs,
	} {
		problems, err := testutil.CollectAndLint(col)
		if err != nil {
			t.Fatalf("%s: lint: %v", name, err)
		}
		for _, p := range problems {
			t.Errorf("%s: promlint: %s: %s", name, p.Metric, p.Text)
		}
	}
}

func TestOptions(t *testing.T) {
	srv := startServer(t, refserver.Options{})
	a := newClient(t, warmpool.DefaultConfig())
	b := newClient(t, warmpool.DefaultConfig())
	mustSend(t, a, srv.URL()+"/answer", 2)
	mustSend(t, b, srv.URL()+"/answer", 3)

	reg := prometheus.NewPedanticRegistry()
	opts := func(name string) []Option {
		return []Option{WithNamespace("frontend"), WithConstLabels(prometheus.Labels{"client": name})}
	}
	reg.MustRegister(NewCollector(a, opts("a")...), NewCollector(b, opts("b")...))
	want := fmt.Sprintf(`
# HELP frontend_attempts_total Request attempts that got a connection, retries included.
# TYPE frontend_attempts_total counter
frontend_attempts_total{client="a",endpoint="",server_address="127.0.0.1",server_port="%[1]s"} 2
frontend_attempts_total{client="b",endpoint="",server_address="127.0.0.1",server_port="%[1]s"} 3
`, port(t, srv.Addr()))
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "frontend_attempts_total"); err != nil {
		t.Error(err)
	}

	// Without a label to tell them apart, the second registration clashes.
	reg = prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(a))
	if err := reg.Register(NewCollector(b)); err == nil {
		t.Error("registering two collectors without const labels succeeded, want a duplicate error")
	}
}

// TestScrapeUnderLoad scrapes while requests run, for the race detector and
// the pedantic registry's consistency checks.
func TestScrapeUnderLoad(t *testing.T) {
	srv := startServer(t, refserver.Options{})
	reqs := NewRequestCollector()
	c := newClient(t, warmpool.DefaultConfig(), warmpool.WithHooks(reqs.Hooks()))
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(c), reqs)

	const workers, perWorker = 8, 50
	var wg sync.WaitGroup
	done := make(chan struct{})
	for range workers {
		wg.Go(func() {
			for range perWorker {
				if _, err := send(c, srv.URL()+"/answer"); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	go func() { wg.Wait(); close(done) }()
	for scrapes := 0; ; scrapes++ {
		if _, err := reg.Gather(); err != nil {
			t.Fatalf("scrape %d: %v", scrapes, err)
		}
		select {
		case <-done:
			if got := testutil.ToFloat64(reqs.responses.WithLabelValues("127.0.0.1", port(t, srv.Addr()), "200")); got != workers*perWorker {
				t.Errorf("responses_total{http_response_status_code=200} = %v, want %d", got, workers*perWorker)
			}
			return
		default:
		}
	}
}
