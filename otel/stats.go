package warmpoolotel

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/httpconv"
)

// RegisterStats registers one callback that reads c.Stats() each time the
// SDK collects and reports it through the observable instruments. Call it
// after warmpool.New, once per client; unregister the result when the client
// is no longer used, or the callback keeps reporting it (its counters as
// they were at Close, its gauges at zero).
func (m *Metrics) RegisterStats(c *warmpool.Client) (metric.Registration, error) {
	if c == nil {
		return nil, errors.New("warmpoolotel: RegisterStats: nil client")
	}
	return m.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		m.observe(o, c.Stats())
		return nil
	},
		m.openConns, m.activeRequests, m.dialing, m.waiting,
		m.created, m.closed, m.dialFailures, m.tlsHandshakes, m.attempts, m.reused,
		m.waits, m.poolTimeouts, m.retries, m.budgetRefusals,
		m.tokenFetches, m.tokenFetchFailures,
		m.tlsTime, m.waitTime,
		m.limit, m.limitWaiting, m.limitWaits, m.limitWaitTime, m.rejected,
		m.circuitOpen, m.circuitOpens, m.hedges, m.hedgeWins, m.latency,
	)
}

// observe reports one Stats snapshot. Every close reason and dial failure
// kind is reported, zeros included, so that a backend computing rates sees
// each series from its first increment.
func (m *Metrics) observe(o metric.Observer, s warmpool.Stats) {
	for _, addr := range s.HostNames() {
		hs := s.Hosts[addr]
		base := m.host(addr).kvs(m.attrs...)
		at := metric.WithAttributeSet(attribute.NewSet(base...))
		with := func(kv attribute.KeyValue) metric.ObserveOption {
			return metric.WithAttributeSet(attribute.NewSet(append(base[:len(base):len(base)], kv)...))
		}

		o.ObserveInt64(m.openConns, hs.InUse, with(attribute.String("http.connection.state", "active")))
		o.ObserveInt64(m.openConns, hs.Idle, with(attribute.String("http.connection.state", "idle")))
		o.ObserveInt64(m.activeRequests, hs.InFlight, at)
		o.ObserveInt64(m.dialing, hs.Dialing, at)
		o.ObserveInt64(m.created, hs.Created, at)
		for _, r := range httpconv.CloseReasons(hs.ClosedBy) {
			o.ObserveInt64(m.closed, r.N, with(attribute.String("warmpool.close.reason", r.Name)))
		}
		for _, k := range httpconv.DialFailureKinds(hs.DialFailures) {
			o.ObserveInt64(m.dialFailures, k.N, with(attribute.String("warmpool.dial.failure.kind", k.Name)))
		}
		o.ObserveInt64(m.tlsHandshakes, hs.TLSHandshakes, at)
		o.ObserveFloat64(m.tlsTime, hs.TLSHandshakeTime.Seconds(), at)
		o.ObserveInt64(m.attempts, hs.Requests, at)
		o.ObserveInt64(m.reused, hs.Reused, at)
		o.ObserveInt64(m.waiting, hs.Waiting, at)
		o.ObserveInt64(m.waits, hs.Waits, at)
		o.ObserveFloat64(m.waitTime, hs.WaitTime.Seconds(), at)
		o.ObserveInt64(m.poolTimeouts, hs.PoolTimeouts, at)
		m.observeDegradation(o, hs, at, with)
	}
	client := metric.WithAttributeSet(attribute.NewSet(m.attrs...))
	o.ObserveInt64(m.retries, s.Retries, client)
	o.ObserveInt64(m.budgetRefusals, s.BudgetRefusals, client)
	o.ObserveInt64(m.tokenFetches, s.TokenFetches, client)
	o.ObserveInt64(m.tokenFetchFailures, s.TokenFetchFailures, client)
	o.ObserveInt64(m.hedges, s.Hedges, client)
	o.ObserveInt64(m.hedgeWins, s.HedgeWins, client)
}

// observeDegradation reports one host's concurrency limit, rejections,
// circuit breaker and recent latency.
func (m *Metrics) observeDegradation(o metric.Observer, hs warmpool.HostStats, at metric.ObserveOption,
	with func(attribute.KeyValue) metric.ObserveOption) {
	o.ObserveInt64(m.limit, hs.ConcurrencyLimit, at)
	o.ObserveInt64(m.limitWaiting, hs.LimitWaiting, at)
	o.ObserveInt64(m.limitWaits, hs.LimitWaits, at)
	o.ObserveFloat64(m.limitWaitTime, hs.LimitWaitTime.Seconds(), at)
	for _, r := range httpconv.Rejections(hs) {
		o.ObserveInt64(m.rejected, r.N, with(attribute.String("warmpool.rejection.reason", r.Name)))
	}
	for _, st := range httpconv.CircuitStates {
		var v int64
		if hs.CircuitState == st {
			v = 1
		}
		o.ObserveInt64(m.circuitOpen, v, with(attribute.String("warmpool.circuit.state", st)))
	}
	o.ObserveInt64(m.circuitOpens, hs.CircuitOpens, at)
	for _, l := range httpconv.RecentLatency(hs) {
		o.ObserveFloat64(m.latency, l.S, with(attribute.String("warmpool.latency.percentile", l.Name)))
	}
}
