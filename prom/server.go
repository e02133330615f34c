package prom

import (
	"github.com/prometheus/client_golang/prometheus"
)

// ServerStats are a backend's connection counts as the server sees them, the
// fair measure of a pooling client: a client that pools well keeps Accepted
// near its concurrency however many Requests it sends. Counters only grow;
// Open, PeakOpen and InFlight are gauges.
type ServerStats struct {
	Accepted int64 // connections accepted
	Open     int64 // connections open now
	PeakOpen int64 // the most connections open at once
	Closed   int64 // connections closed
	Refused  int64 // connections closed on accept, over a connection limit
	Requests int64 // requests served, on any path
	InFlight int64 // requests being served now
}

// serverCollector exports a ServerStats snapshot per scrape.
type serverCollector struct {
	stats func() ServerStats

	accepted, open, peakOpen, closed, refused, requests, inFlight *prometheus.Desc
}

// NewServerCollector returns a collector of a backend's connection counts,
// calling stats once per scrape. It is meant for a backend measured next to
// a warmpool client, such as a test server in the same process:
//
//	warmpool_server_connections_accepted_total  counter
//	warmpool_server_open_connections            gauge
//	warmpool_server_peak_open_connections       gauge
//	warmpool_server_connections_closed_total    counter
//	warmpool_server_connections_refused_total   counter
//	warmpool_server_requests_total              counter
//	warmpool_server_requests_in_flight          gauge
//
// WithNamespace and WithConstLabels apply as for NewCollector; the names keep
// their "server" part. stats must be safe to call concurrently, as scrapes
// may overlap.
func NewServerCollector(stats func() ServerStats, opts ...Option) prometheus.Collector {
	o := newOptions(opts)
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(o.namespace, "server", name), help, nil, o.constLabels)
	}
	return &serverCollector{
		stats:    stats,
		accepted: desc("connections_accepted_total", "Connections the server accepted."),
		open:     desc("open_connections", "Connections open now, as the server sees them."),
		peakOpen: desc("peak_open_connections", "The most connections open at once since the server started."),
		closed:   desc("connections_closed_total", "Connections closed, by either side."),
		refused:  desc("connections_refused_total", "Connections the server closed as soon as it accepted them, being at its connection limit."),
		requests: desc("requests_total", "Requests the server received, on any path."),
		inFlight: desc("requests_in_flight", "Requests the server is handling now."),
	}
}

// Describe implements prometheus.Collector.
func (c *serverCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.accepted, c.open, c.peakOpen, c.closed, c.refused, c.requests, c.inFlight} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: one ServerStats snapshot per scrape.
func (c *serverCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	for _, m := range []struct {
		d *prometheus.Desc
		t prometheus.ValueType
		v int64
	}{
		{c.accepted, prometheus.CounterValue, s.Accepted},
		{c.open, prometheus.GaugeValue, s.Open},
		{c.peakOpen, prometheus.GaugeValue, s.PeakOpen},
		{c.closed, prometheus.CounterValue, s.Closed},
		{c.refused, prometheus.CounterValue, s.Refused},
		{c.requests, prometheus.CounterValue, s.Requests},
		{c.inFlight, prometheus.GaugeValue, s.InFlight},
	} {
		ch <- prometheus.MustNewConstMetric(m.d, m.t, float64(m.v))
	}
}
