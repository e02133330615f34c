// Package prom exports a warmpool.Client's pool figures as Prometheus metrics.
//
// It is the only package of warmpool that imports client_golang, so programs
// that do not use Prometheus do not link it. It follows database/sql and
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
// Every pool metric has a host label, the dialed address ("host:port"); sum
// over it for the client's total. Names use the namespace "warmpool" unless
// WithNamespace says otherwise. Connection states and the request duration
// buckets follow the OpenTelemetry HTTP client semantic conventions
// (http.client.open_connections, http.client.request.duration).
//
//	warmpool_open_connections{host,state="active|idle"}    gauge
//	warmpool_dialing_connections{host}                      gauge
//	warmpool_connections_created_total{host}                counter
//	warmpool_connections_closed_total{host,reason}          counter: idle_expiry, max_age, server, error, client, trim, other, unused
//	warmpool_dial_failures_total{host,kind}                 counter: refused, timeout, dns, tls, other
//	warmpool_tls_handshakes_total{host}                     counter
//	warmpool_tls_handshake_seconds_total{host}              counter
//	warmpool_requests_total{host}                           counter: attempts that got a connection
//	warmpool_requests_reused_total{host}                    counter: of those, on a connection that served before
//	warmpool_requests_in_flight{host}                       gauge
//	warmpool_requests_waiting{host}                         gauge: waiting for a connection now
//	warmpool_connection_waits_total{host}                   counter
//	warmpool_connection_wait_seconds_total{host}            counter
//	warmpool_pool_timeouts_total{host}                      counter
//	warmpool_retries_total                                  counter
//	warmpool_retry_budget_refusals_total                    counter
//	warmpool_token_fetches_total                            counter
//	warmpool_token_fetch_failures_total                     counter
//
// and from NewRequestCollector:
//
//	warmpool_request_duration_seconds{host,method,code}     histogram, per attempt
//	warmpool_responses_total{host,code}                     counter
//
// A connection closed "unused" was dialed but never served a request: it
// lost the race to a connection that became free first. A steady trickle of
// them is net/http's dial racing at a burst, not a fault.
//
// NewServerCollector exports the other side: the connection counts of a
// backend served in the same process, as the server sees them, under
// warmpool_server_ (see ServerStats). Handler serves any of these
// collectors, on a registry of its own, for a /metrics endpoint.
//
// To export two clients from one process, give each collector a distinguishing
// constant label with WithConstLabels, as collectors.NewDBStatsCollector does
// with db_name.
package prom

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/warmpool/warmpool"
)

// Option configures NewCollector, NewRequestCollector and NewServerCollector.
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
	requests, reused, inFlight, waiting                    *prometheus.Desc
	waits, waitSeconds, poolTimeouts                       *prometheus.Desc
	retries, budgetRefusals, tokenFetches, tokenFetchFails *prometheus.Desc
}

// NewCollector returns a collector of c's pool metrics that reads c.Stats()
// at each scrape, adding nothing to c's request path.
func NewCollector(c *warmpool.Client, opts ...Option) prometheus.Collector {
	o := newOptions(opts)
	return &collector{
		client: c,

		open:         o.desc("open_connections", "Connections open now, by state: active (serving a request) or idle.", "host", "state"),
		dialing:      o.desc("dialing_connections", "Connections being dialed now.", "host"),
		created:      o.desc("connections_created_total", "Connections opened.", "host"),
		closed:       o.desc("connections_closed_total", "Connections closed, by reason.", "host", "reason"),
		dialFailures: o.desc("dial_failures_total", "Failed attempts to open a connection, by kind.", "host", "kind"),

		tlsHandshakes: o.desc("tls_handshakes_total", "Completed TLS handshakes.", "host"),
		tlsSeconds:    o.desc("tls_handshake_seconds_total", "Time spent in completed TLS handshakes.", "host"),

		requests: o.desc("requests_total", "Request attempts that got a connection.", "host"),
		reused:   o.desc("requests_reused_total", "Request attempts served on a connection that had served before.", "host"),
		inFlight: o.desc("requests_in_flight", "Request attempts between sending and their response body being done.", "host"),
		waiting:  o.desc("requests_waiting", "Request attempts waiting now for a connection, all max_connections being busy.", "host"),

		waits:        o.desc("connection_waits_total", "Request attempts that had to wait for a connection.", "host"),
		waitSeconds:  o.desc("connection_wait_seconds_total", "Time request attempts spent waiting for a connection.", "host"),
		poolTimeouts: o.desc("pool_timeouts_total", "Request attempts that gave up waiting for a connection after pool_timeout.", "host"),

		retries:         o.desc("retries_total", "Request attempts after the first."),
		budgetRefusals:  o.desc("retry_budget_refusals_total", "Retries refused by the retry budget."),
		tokenFetches:    o.desc("token_fetches_total", "Calls to the token source."),
		tokenFetchFails: o.desc("token_fetch_failures_total", "Calls to the token source that failed."),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.open, c.dialing, c.created, c.closed, c.dialFailures,
		c.tlsHandshakes, c.tlsSeconds,
		c.requests, c.reused, c.inFlight, c.waiting,
		c.waits, c.waitSeconds, c.poolTimeouts,
		c.retries, c.budgetRefusals, c.tokenFetches, c.tokenFetchFails,
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
	for host, h := range s.Hosts {
		gauge(c.open, h.InUse, host, "active")
		gauge(c.open, h.Idle, host, "idle")
		gauge(c.dialing, h.Dialing, host)
		counter(c.created, float64(h.Created), host)
		for _, r := range closeReasons(h.ClosedBy) {
			counter(c.closed, float64(r.n), host, r.name)
		}
		for _, k := range dialFailureKinds(h.DialFailures) {
			counter(c.dialFailures, float64(k.n), host, k.name)
		}
		counter(c.tlsHandshakes, float64(h.TLSHandshakes), host)
		counter(c.tlsSeconds, h.TLSHandshakeTime.Seconds(), host)
		counter(c.requests, float64(h.Requests), host)
		counter(c.reused, float64(h.Reused), host)
		gauge(c.inFlight, h.InFlight, host)
		gauge(c.waiting, h.Waiting, host)
		counter(c.waits, float64(h.Waits), host)
		counter(c.waitSeconds, h.WaitTime.Seconds(), host)
		counter(c.poolTimeouts, float64(h.PoolTimeouts), host)
	}
	counter(c.retries, float64(s.Retries))
	counter(c.budgetRefusals, float64(s.BudgetRefusals))
	counter(c.tokenFetches, float64(s.TokenFetches))
	counter(c.tokenFetchFails, float64(s.TokenFetchFailures))
}

type named struct {
	name string
	n    int64
}

// closeReasons lists every reason, zeros included, so that rate() sees a
// series from its first increment. The names are those of Hooks.ConnClosed;
// TestCloseReasonsCoverEveryField fails when CloseReasons gains a field that
// is missing here.
func closeReasons(r warmpool.CloseReasons) [8]named {
	return [...]named{
		{"idle_expiry", r.IdleExpiry}, {"max_age", r.MaxAge}, {"server", r.Server},
		{"error", r.Error}, {"client", r.Client}, {"trim", r.Trim}, {"other", r.Other},
		{"unused", r.Unused},
	}
}

func dialFailureKinds(d warmpool.DialFailures) [5]named {
	return [...]named{
		{"refused", d.Refused}, {"timeout", d.Timeout}, {"dns", d.DNS}, {"tls", d.TLS}, {"other", d.Other},
	}
}
