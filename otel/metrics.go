package warmpoolotel

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/httpconv"
)

// ScopeName is the name of the meter the instruments belong to.
const ScopeName = "github.com/warmpool/warmpool/otel"

// RequestDurationBuckets are the boundaries, in seconds, of
// http.client.request.duration: those the semantic conventions advise.
var RequestDurationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// ConnectionDurationBuckets are the boundaries, in seconds, of
// http.client.connection.duration. Connections outlive requests by far; the
// conventions advise no boundaries, and these are ASP.NET Core's.
var ConnectionDurationBuckets = []float64{0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300}

// Option configures New.
type Option func(*options)

type options struct {
	attrs []attribute.KeyValue
}

// WithAttributes adds attributes with fixed values to every measurement, for
// example attribute.String("warmpool.client", "billing") to tell two clients
// apart, as prom.WithConstLabels does.
func WithAttributes(kv ...attribute.KeyValue) Option {
	return func(o *options) { o.attrs = append(o.attrs, kv...) }
}

// Metrics holds the instruments for one warmpool client: synchronous ones
// fed by the Hooks it returns, observable ones fed by RegisterStats. It is
// safe for concurrent use.
type Metrics struct {
	meter metric.Meter
	attrs []attribute.KeyValue // from WithAttributes

	requestDuration, connectionDuration metric.Float64Histogram

	openConns, activeRequests, dialing, waiting                    metric.Int64ObservableUpDownCounter
	created, closed, dialFailures, tlsHandshakes, attempts, reused metric.Int64ObservableCounter
	waits, poolTimeouts, retries, budgetRefusals                   metric.Int64ObservableCounter
	tokenFetches, tokenFetchFailures                               metric.Int64ObservableCounter
	tlsTime, waitTime                                              metric.Float64ObservableCounter

	limit, limitWaiting                metric.Int64ObservableUpDownCounter
	limitWaits, rejected, circuitOpens metric.Int64ObservableCounter
	hedges, hedgeWins                  metric.Int64ObservableCounter
	limitWaitTime                      metric.Float64ObservableCounter
	circuitOpen                        metric.Int64ObservableUpDownCounter
	latency                            metric.Float64ObservableGauge

	hosts sync.Map // dialed "host:port" → hostAttrs
}

// New creates the instruments on a meter of mp; a nil mp means the global
// otel.GetMeterProvider(). Pass the result's Hooks to warmpool.New, then
// call RegisterStats with the client (see the package doc).
func New(mp metric.MeterProvider, opts ...Option) (*Metrics, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	m := &Metrics{
		meter: mp.Meter(ScopeName, metric.WithInstrumentationVersion(warmpool.Version)),
		attrs: o.attrs,
	}
	var errs []error
	check := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	fhist := func(name, unit, desc string, bounds []float64) metric.Float64Histogram {
		h, err := m.meter.Float64Histogram(name, metric.WithUnit(unit), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(bounds...))
		check(err)
		return h
	}
	gauge := func(name, unit, desc string) metric.Int64ObservableUpDownCounter {
		g, err := m.meter.Int64ObservableUpDownCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		check(err)
		return g
	}
	counter := func(name, unit, desc string) metric.Int64ObservableCounter {
		c, err := m.meter.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		check(err)
		return c
	}
	seconds := func(name, desc string) metric.Float64ObservableCounter {
		c, err := m.meter.Float64ObservableCounter(name, metric.WithUnit("s"), metric.WithDescription(desc))
		check(err)
		return c
	}

	m.requestDuration = fhist("http.client.request.duration", "s",
		"Duration of HTTP client requests: one per attempt, from sending until the response body was done.", RequestDurationBuckets)
	m.connectionDuration = fhist("http.client.connection.duration", "s",
		"The duration of the successfully established outbound HTTP connections, recorded when they close.", ConnectionDurationBuckets)

	m.openConns = gauge("http.client.open_connections", "{connection}",
		"Number of outbound HTTP connections that are currently active or idle on the client.")
	m.activeRequests = gauge("http.client.active_requests", "{request}",
		"Number of active HTTP requests: attempts between sending and their response body being done.")
	m.dialing = gauge("warmpool.connections.dialing", "{connection}", "Connections being dialed.")
	m.created = counter("warmpool.connections.created", "{connection}", "Connections opened.")
	m.closed = counter("warmpool.connections.closed", "{connection}", "Connections closed, by reason.")
	m.dialFailures = counter("warmpool.dial.failures", "{dial}", "Failed attempts to open a connection, by kind.")
	m.tlsHandshakes = counter("warmpool.tls.handshakes", "{handshake}", "Completed TLS handshakes.")
	m.tlsTime = seconds("warmpool.tls.handshake.duration", "Total time spent in completed TLS handshakes.")
	m.attempts = counter("warmpool.attempts", "{attempt}", "Request attempts that got a connection, retries included.")
	m.reused = counter("warmpool.attempts.reused", "{attempt}", "Request attempts served on a connection that had served before.")
	m.waiting = gauge("warmpool.pool.waiting", "{request}", "Request attempts waiting for a connection, all max_connections being busy.")
	m.waits = counter("warmpool.pool.waits", "{request}", "Request attempts that had to wait for a connection.")
	m.waitTime = seconds("warmpool.pool.wait.duration", "Total time request attempts spent waiting for a connection.")
	m.poolTimeouts = counter("warmpool.pool.timeouts", "{request}", "Request attempts that gave up waiting for a connection after pool_timeout.")
	m.retries = counter("warmpool.retries", "{retry}", "Request attempts after the first.")
	m.budgetRefusals = counter("warmpool.retry.budget.refusals", "{retry}", "Retries refused by the retry budget.")
	m.tokenFetches = counter("warmpool.token.fetches", "{fetch}", "Calls to the token source.")
	m.tokenFetchFailures = counter("warmpool.token.fetch.failures", "{fetch}", "Calls to the token source that failed.")
	m.degradationInstruments(gauge, counter, seconds, check)

	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("warmpoolotel: creating instruments: %w", err)
	}
	return m, nil
}

// degradationInstruments creates the instruments of the concurrency limit,
// the circuit breaker, rejections, hedging and recent latency.
func (m *Metrics) degradationInstruments(gauge func(name, unit, desc string) metric.Int64ObservableUpDownCounter,
	counter func(name, unit, desc string) metric.Int64ObservableCounter,
	seconds func(name, desc string) metric.Float64ObservableCounter, check func(error)) {
	m.limit = gauge("warmpool.concurrency.limit", "{request}", "The limit on requests in flight now (concurrency_limit); 0: none.")
	m.limitWaiting = gauge("warmpool.concurrency.waiting", "{request}", "Requests queued now at the concurrency limit.")
	m.limitWaits = counter("warmpool.concurrency.waits", "{request}", "Requests that queued at the concurrency limit.")
	m.limitWaitTime = seconds("warmpool.concurrency.wait.duration", "Total time requests spent queued at the concurrency limit.")
	m.rejected = counter("warmpool.requests.rejected", "{request}",
		"Requests not sent, by warmpool.rejection.reason: overloaded, throttled, circuit_open or deadline.")
	m.circuitOpen = gauge("warmpool.circuit.state", "{circuit}", "1 for the circuit breaker's state now, by warmpool.circuit.state: closed, open or half_open.")
	m.circuitOpens = counter("warmpool.circuit.opens", "{open}", "Times the circuit breaker opened.")
	m.hedges = counter("warmpool.hedges", "{request}", "Hedged requests sent (hedge_after).")
	m.hedgeWins = counter("warmpool.hedge.wins", "{request}", "Hedged requests whose answer came first.")
	var err error
	m.latency, err = m.meter.Float64ObservableGauge("warmpool.latency.recent", metric.WithUnit("s"),
		metric.WithDescription("Latency of recent successful attempts, connection to end of body, by warmpool.latency.percentile: min, p50, p95, p99."))
	check(err)
}

// Hooks returns warmpool.Hooks with RequestDone and ConnClosed set to record
// http.client.request.duration and http.client.connection.duration. Pass
// them to warmpool.WithHooks; to add hooks of your own, set the other fields
// of the returned value, or call these two from yours.
func (m *Metrics) Hooks() warmpool.Hooks {
	return warmpool.Hooks{RequestDone: m.requestDone, ConnClosed: m.connClosed}
}

// requestDone records one finished attempt. It runs concurrently, on the
// goroutines that finish requests.
func (m *Metrics) requestDone(info warmpool.RequestInfo) {
	kv := m.host(info.Host).kvs(attribute.String("http.request.method", httpconv.Method(info.Method)))
	if info.StatusCode != 0 {
		kv = append(kv, attribute.Int("http.response.status_code", info.StatusCode))
	}
	if et := httpconv.ErrorType(info.StatusCode, info.Err); et != "" {
		kv = append(kv, attribute.String("error.type", et))
	}
	kv = append(kv, m.attrs...)
	m.requestDuration.Record(context.Background(), info.Duration.Seconds(), metric.WithAttributeSet(attribute.NewSet(kv...)))
}

// connClosed records the lifetime of a closed connection.
func (m *Metrics) connClosed(info warmpool.ConnInfo, reason string) {
	kv := m.host(info.Host).kvs(attribute.String("warmpool.close.reason", reason))
	kv = append(kv, m.attrs...)
	m.connectionDuration.Record(context.Background(), info.Age.Seconds(), metric.WithAttributeSet(attribute.NewSet(kv...)))
}

// host returns the server attributes of a dialed address, parsed once.
func (m *Metrics) host(addr string) hostAttrs {
	if h, ok := m.hosts.Load(addr); ok {
		return h.(hostAttrs)
	}
	h := parseHost(addr)
	m.hosts.Store(addr, h)
	return h
}
