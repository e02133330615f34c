// Package prom exports a warmpool.Client's pool figures as Prometheus metrics.
//
// It is the only library package of warmpool that imports client_golang, so
// programs that do not use Prometheus do not link it. It follows database/sql and
// collectors.NewDBStatsCollector: the request path keeps only the client's
// atomic counters, and NewCollector reads (*warmpool.Client).Stats when
// Prometheus scrapes. Register it on your own registry; nothing here touches
// prometheus.DefaultRegisterer:
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(prom.NewCollector(client))
//
// Per-request figures (status codes, durations) are not in a Stats snapshot.
// NewRequestCollector gathers them from the warmpool.Hooks.RequestDone hook,
// and so must exist before the client:
//
//	reqs := prom.NewRequestCollector()
//	client, err := warmpool.New(cfg, warmpool.WithHooks(reqs.Hooks()))
//	...
//	reg.MustRegister(prom.NewCollector(client), reqs)
//
// # Metrics
//
// Every pool metric has the labels server_address and server_port, split
// from the dialed address ("host:port"), and endpoint; sum over them for the
// client's total. A host name whose requests warmpool spreads over its
// addresses (warmpool.Config.Balancer) has one series per endpoint: its
// server_address is the host name and its endpoint the address dialed
// ("ip:port"). For other hosts endpoint is empty, which Prometheus stores
// as no label, so their series are those of earlier releases. Names use the namespace "warmpool" unless WithNamespace says
// otherwise. Label names are those OpenTelemetry's Prometheus exporter gives
// the attributes of package otel (server.address becomes server_address), so
// a dashboard reads either exporter's series with the same labels; states,
// methods, error types and the request duration buckets follow the
// OpenTelemetry HTTP client semantic conventions.
//
//	warmpool_open_connections{http_connection_state="active|idle"}  gauge
//	warmpool_dialing_connections                                    gauge
//	warmpool_connections_created_total                              counter
//	warmpool_connections_closed_total{warmpool_close_reason}        counter: each of warmpool.CloseReasonNames
//	warmpool_dial_failures_total{warmpool_dial_failure_kind}        counter: each of warmpool.DialFailureKinds
//	warmpool_tls_handshakes_total                                   counter
//	warmpool_tls_handshake_seconds_total                            counter
//	warmpool_attempts_total                                         counter: attempts that got a connection, retries included
//	warmpool_attempts_reused_total                                  counter: of those, on a connection that served before
//	warmpool_requests_in_flight                                     gauge
//	warmpool_requests_waiting                                       gauge: waiting for a connection now
//	warmpool_connection_waits_total                                 counter
//	warmpool_connection_wait_seconds_total                          counter
//	warmpool_pool_timeouts_total                                    counter
//	warmpool_endpoints{state="active|ejected|draining"}             gauge, without endpoint: endpoints of a balanced host name
//	warmpool_endpoint_ejections_total                               counter: times the endpoint was ejected
//	warmpool_concurrency_limit                                      gauge: the limit on requests in flight now; 0: none
//	warmpool_limit_waiting                                          gauge: requests queued at the limit now
//	warmpool_limit_waits_total                                      counter
//	warmpool_limit_wait_seconds_total                               counter
//	warmpool_requests_rejected_total{reason}                        counter: not sent; reason overloaded|throttled|circuit_open|deadline
//	warmpool_circuit_state{state="closed|open|half_open"}           gauge: 1 for the breaker's state now
//	warmpool_circuit_opens_total                                    counter
//	warmpool_recent_latency_seconds{percentile="min|p50|p95|p99"}   gauge: recent successes, connection to end of body
//	warmpool_hedges_total                                           counter, without server labels
//	warmpool_hedge_wins_total                                       counter, without server labels
//	warmpool_retries_total                                          counter, without server labels
//	warmpool_retry_budget_refusals_total                            counter, without server labels
//	warmpool_token_fetches_total                                    counter, without server labels
//	warmpool_token_fetch_failures_total                             counter, without server labels
//
// and from NewRequestCollector:
//
//	warmpool_request_duration_seconds{http_request_method,http_response_status_code,error_type}  histogram, per attempt
//	warmpool_responses_total{http_response_status_code}                                          counter
//
// Attempts, not calls: warmpool_attempts_total counts every attempt that got
// a connection (Stats.Requests), a retried call once per attempt. Stats has
// no count of logical calls, so there is no warmpool_requests_total; the
// difference is warmpool_retries_total for calls that reached a connection.
// (Releases before 0.2.0 named it warmpool_requests_total, and had a host
// label where they now have server_address and server_port.)
//
// A connection closed "unused" was dialed but never served a request: it
// lost the race to a connection that became free first. A steady trickle of
// them is net/http's dial racing at a burst, not a fault.
//
// Handler serves any of these collectors, on a registry of its own, for a
// /metrics endpoint. (The connection counts of the reference server, as it
// sees them, are "warmpool serve"'s own: cmd/warmpool exports them.)
//
// To export two clients from one process, give each collector a distinguishing
// constant label with WithConstLabels, as collectors.NewDBStatsCollector does
// with db_name.
package prom

import (
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/httpconv"
)

// Option configures NewCollector and NewRequestCollector.
type Option func(*options)

type options struct {
	namespace   string
	constLabels prometheus.Labels
	buckets     []float64
}

// WithNamespace replaces the "warmpool" prefix of every metric name, as
// prometheus.Opts.Namespace does; "" leaves names unprefixed.
func WithNamespace(ns string) Option { return func(o *options) { o.namespace = ns } }

// WithConstLabels adds labels with fixed values to every metric, for example
// {"client": "billing"} to tell two clients apart.
func WithConstLabels(l prometheus.Labels) Option { return func(o *options) { o.constLabels = l } }

// WithBuckets sets the upper bounds, in seconds, of the request duration
// histogram of NewRequestCollector. The default is DefaultBuckets.
func WithBuckets(b []float64) Option { return func(o *options) { o.buckets = b } }

func newOptions(opts []Option) options {
	o := options{namespace: "warmpool", buckets: DefaultBuckets}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

func (o options) desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(o.namespace, "", name), help, labels, o.constLabels)
}

// collector exports a client's Stats; see the package doc for the metrics.
type collector struct {
	client *warmpool.Client

	open, dialing, created, closed, dialFailures           *prometheus.Desc
	tlsHandshakes, tlsSeconds                              *prometheus.Desc
	attempts, reused, inFlight, waiting                    *prometheus.Desc
	waits, waitSeconds, poolTimeouts                       *prometheus.Desc
	retries, budgetRefusals, tokenFetches, tokenFetchFails *prometheus.Desc
	failures, learnedIdle, calls, callsFailed              *prometheus.Desc
	endpoints, ejections                                   *prometheus.Desc
	limit, limitWaiting, limitWaits, limitWaitSeconds      *prometheus.Desc
	rejected, circuit, circuitOpens, latency               *prometheus.Desc
	hedges, hedgeWins                                      *prometheus.Desc
}

// NewCollector returns a collector of c's pool metrics that reads c.Stats()
// at each scrape, adding nothing to c's request path.
func NewCollector(c *warmpool.Client, opts ...Option) prometheus.Collector {
	o := newOptions(opts)
	server := func(name, help string, labels ...string) *prometheus.Desc {
		return o.desc(name, help, append([]string{"server_address", "server_port", "endpoint"}, labels...)...)
	}
	return &collector{
		client: c,

		open:         server("open_connections", "Connections open now, by state: active (serving a request) or idle.", "http_connection_state"),
		dialing:      server("dialing_connections", "Connections being dialed now."),
		created:      server("connections_created_total", "Connections opened."),
		closed:       server("connections_closed_total", "Connections closed, by reason.", "warmpool_close_reason"),
		dialFailures: server("dial_failures_total", "Failed attempts to open a connection, by kind.", "warmpool_dial_failure_kind"),

		tlsHandshakes: server("tls_handshakes_total", "Completed TLS handshakes."),
		tlsSeconds:    server("tls_handshake_seconds_total", "Time spent in completed TLS handshakes."),

		attempts: server("attempts_total", "Request attempts that got a connection, retries included."),
		reused:   server("attempts_reused_total", "Request attempts served on a connection that had served before."),
		inFlight: server("requests_in_flight", "Request attempts between sending and their response body being done."),
		waiting:  server("requests_waiting", "Request attempts waiting now for a connection, all max_connections being busy."),

		waits:        server("connection_waits_total", "Request attempts that had to wait for a connection."),
		waitSeconds:  server("connection_wait_seconds_total", "Time request attempts spent waiting for a connection."),
		poolTimeouts: server("pool_timeouts_total", "Request attempts that gave up waiting for a connection after pool_timeout."),

		failures:    server("attempt_failures_total", "Request attempts that ended in an error, by warmpool.ErrorKind.", "error_type"),
		learnedIdle: server("learned_idle_timeout_seconds", "The server's idle timeout as warmpool learned it; 0 while none is known. Idle connections close a margin before it."),
		calls:       o.desc("requests_total", "Requests made (Do, the JSON calls, HTTPClient), each counted once however many attempts it took."),
		callsFailed: o.desc("request_failures_total", "Requests that ended in an error (not counting answers with a non-2xx status)."),

		retries:         o.desc("retries_total", "Request attempts after the first."),
		budgetRefusals:  o.desc("retry_budget_refusals_total", "Retries refused by the retry budget."),
		tokenFetches:    o.desc("token_fetches_total", "Calls to the token source."),
		tokenFetchFails: o.desc("token_fetch_failures_total", "Calls to the token source that failed."),

		endpoints: o.desc("endpoints", "Endpoints (addresses) of a balanced host name, by state: active, ejected or draining.",
			"server_address", "server_port", "state"),
		ejections: server("endpoint_ejections_total", "Times the endpoint was ejected after consecutive failures."),

		limit:            server("concurrency_limit", "The limit on requests in flight now (concurrency_limit); 0: none."),
		limitWaiting:     server("limit_waiting", "Requests queued now at the concurrency limit."),
		limitWaits:       server("limit_waits_total", "Requests that queued at the concurrency limit."),
		limitWaitSeconds: server("limit_wait_seconds_total", "Time requests spent queued at the concurrency limit."),
		rejected:         server("requests_rejected_total", "Requests not sent: over the concurrency limit (overloaded), by client-side throttling (throttled), by an open circuit breaker (circuit_open), or with less time left than the fastest recent answer (deadline).", "reason"),
		circuit:          server("circuit_state", "1 for the circuit breaker's state now: closed, open or half_open.", "state"),
		circuitOpens:     server("circuit_opens_total", "Times the circuit breaker opened."),
		latency:          server("recent_latency_seconds", "Latency of recent successful attempts (the last 15-30 s), connection to end of body: the lowest and percentiles; 0 before 20 of them.", "percentile"),
		hedges:           o.desc("hedges_total", "Hedged requests sent (hedge_after)."),
		hedgeWins:        o.desc("hedge_wins_total", "Hedged requests whose answer came first."),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.open, c.dialing, c.created, c.closed, c.dialFailures,
		c.tlsHandshakes, c.tlsSeconds,
		c.attempts, c.reused, c.inFlight, c.waiting,
		c.waits, c.waitSeconds, c.poolTimeouts,
		c.retries, c.budgetRefusals, c.tokenFetches, c.tokenFetchFails,
		c.failures, c.learnedIdle, c.calls, c.callsFailed,
		c.endpoints, c.ejections,
		c.limit, c.limitWaiting, c.limitWaits, c.limitWaitSeconds,
		c.rejected, c.circuit, c.circuitOpens, c.latency, c.hedges, c.hedgeWins,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: one Stats snapshot per scrape.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.client.Stats()
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	type name struct{ host, port string }
	states := map[name]map[string]int64{}
	for addr, h := range s.Hosts {
		host, port, ep := hostLabels(addr, h)
		gauge(c.open, h.InUse, host, port, ep, "active")
		gauge(c.open, h.Idle, host, port, ep, "idle")
		gauge(c.dialing, h.Dialing, host, port, ep)
		counter(c.created, float64(h.Created), host, port, ep)
		for _, r := range httpconv.CloseReasons(h.ClosedBy) {
			counter(c.closed, float64(r.N), host, port, ep, r.Name)
		}
		for _, k := range httpconv.DialFailureKinds(h.DialFailures) {
			counter(c.dialFailures, float64(k.N), host, port, ep, k.Name)
		}
		counter(c.tlsHandshakes, float64(h.TLSHandshakes), host, port, ep)
		counter(c.tlsSeconds, h.TLSHandshakeTime.Seconds(), host, port, ep)
		counter(c.attempts, float64(h.Requests), host, port, ep)
		counter(c.reused, float64(h.Reused), host, port, ep)
		gauge(c.inFlight, h.InFlight, host, port, ep)
		gauge(c.waiting, h.Waiting, host, port, ep)
		counter(c.waits, float64(h.Waits), host, port, ep)
		counter(c.waitSeconds, h.WaitTime.Seconds(), host, port, ep)
		counter(c.poolTimeouts, float64(h.PoolTimeouts), host, port, ep)
		for _, kind := range warmpool.ErrorKinds() {
			counter(c.failures, float64(h.FailuresByKind[kind]), host, port, ep, kind)
		}
		ch <- prometheus.MustNewConstMetric(c.learnedIdle, prometheus.GaugeValue, h.LearnedIdleTimeout.Seconds(), host, port, ep)
		c.collectDegradation(ch, h, host, port, ep)
		if h.EndpointState != "" {
			counter(c.ejections, float64(h.Ejections), host, port, ep)
			n := name{host, port}
			if states[n] == nil {
				states[n] = map[string]int64{"active": 0, "ejected": 0, "draining": 0}
			}
			if _, ok := states[n][h.EndpointState]; ok { // not "removed"
				states[n][h.EndpointState]++
			}
		}
	}
	for n, by := range states {
		for state, v := range by {
			gauge(c.endpoints, v, n.host, n.port, state)
		}
	}
	counter(c.calls, float64(s.Calls))
	counter(c.callsFailed, float64(s.CallsFailed))
	counter(c.retries, float64(s.Retries))
	counter(c.budgetRefusals, float64(s.BudgetRefusals))
	counter(c.tokenFetches, float64(s.TokenFetches))
	counter(c.tokenFetchFails, float64(s.TokenFetchFailures))
	counter(c.hedges, float64(s.Hedges))
	counter(c.hedgeWins, float64(s.HedgeWins))
}

// collectDegradation exports one host's concurrency limit, rejections,
// circuit breaker and recent latency.
func (c *collector) collectDegradation(ch chan<- prometheus.Metric, h warmpool.HostStats, host, port, ep string) {
	send := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, t, v, append([]string{host, port, ep}, labels...)...)
	}
	send(c.limit, prometheus.GaugeValue, float64(h.ConcurrencyLimit))
	send(c.limitWaiting, prometheus.GaugeValue, float64(h.LimitWaiting))
	send(c.limitWaits, prometheus.CounterValue, float64(h.LimitWaits))
	send(c.limitWaitSeconds, prometheus.CounterValue, h.LimitWaitTime.Seconds())
	for _, r := range httpconv.Rejections(h) {
		send(c.rejected, prometheus.CounterValue, float64(r.N), r.Name)
	}
	for _, st := range httpconv.CircuitStates {
		v := 0.0
		if h.CircuitState == st {
			v = 1
		}
		send(c.circuit, prometheus.GaugeValue, v, st)
	}
	send(c.circuitOpens, prometheus.CounterValue, float64(h.CircuitOpens))
	for _, l := range httpconv.RecentLatency(h) {
		send(c.latency, prometheus.GaugeValue, l.S, l.Name)
	}
}

// hostLabels are the server_address, server_port and endpoint values of a
// Stats.Hosts entry: for an endpoint of a balanced name, the name, the port
// and the address dialed ("ip:port", without the "@name" a shared address
// gets in Stats); else the dialed address split, and no endpoint.
func hostLabels(key string, h warmpool.HostStats) (host, port, endpoint string) {
	if h.HostName == "" {
		host, port = serverLabels(key)
		return host, port, ""
	}
	endpoint, _, _ = strings.Cut(key, "@")
	_, port = serverLabels(endpoint)
	return h.HostName, port, endpoint
}

// serverLabels are the server_address and server_port values of a dialed
// address; server_port is empty when the address has no valid port.
func serverLabels(addr string) (host, port string) {
	host, p, ok := httpconv.SplitHost(addr)
	if !ok {
		return host, ""
	}
	return host, strconv.Itoa(p)
}
