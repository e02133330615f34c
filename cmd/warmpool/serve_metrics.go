package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/doctor"
	"github.com/warmpool/warmpool/internal/refserver"
	"github.com/warmpool/warmpool/prom"
)

// wireMetrics sets opts.Routes to serve GET /metrics and the pool page
// (GET /debug/warmpool/) and, with an upstream URL, opts.Upstream to call it
// through a new client, which it returns
// (nil without upstream). The metrics read the server's counters once it is
// stored in served; until then they read zeros, as the route must exist
// before the server does.
func wireMetrics(opts *refserver.Options, upstream string, up clientFlags, stderr io.Writer) (served *atomic.Pointer[refserver.Server], client *warmpool.Client, err error) {
	served = new(atomic.Pointer[refserver.Server])
	serverMetrics := newServerCollector(served)
	metrics := prom.Handler(serverMetrics)
	var pooled []*warmpool.Client // on the pool page
	if upstream != "" {
		if up.token == "" {
			up.token = os.Getenv("WARMPOOL_UPSTREAM_TOKEN")
		}
		reqs := prom.NewRequestCollector()
		if client, err = newClient("serve", up, stderr, warmpool.WithHooks(reqs.Hooks())); err != nil {
			return nil, nil, err
		}
		opts.Upstream = upstreamCall(client, upstream, opts.Logger)
		metrics = prom.Handler(serverMetrics, prom.NewCollector(client), reqs)
		pooled = append(pooled, client)
	}
	opts.Routes = map[string]http.Handler{"GET /metrics": metrics, "GET /debug/warmpool/": warmpool.DebugHandler(pooled...)}
	return served, client, nil
}

// serverCollector exports serve's connection counts as the server sees
// them, the fair measure of a pooling client, under warmpool_server_:
//
//	warmpool_server_connections_accepted_total  counter
//	warmpool_server_open_connections            gauge
//	warmpool_server_peak_open_connections       gauge
//	warmpool_server_connections_closed_total    counter
//	warmpool_server_connections_refused_total   counter
//	warmpool_server_requests_total              counter
//	warmpool_server_requests_in_flight          gauge
//
// It reads the server's Stats once per scrape; zeros until the server is
// stored in srv.
type serverCollector struct {
	srv *atomic.Pointer[refserver.Server]

	accepted, open, peakOpen, closed, refused, requests, inFlight *prometheus.Desc
}

func newServerCollector(srv *atomic.Pointer[refserver.Server]) *serverCollector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName("warmpool", "server", name), help, nil, nil)
	}
	return &serverCollector{
		srv:      srv,
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

// Collect implements prometheus.Collector: one Stats snapshot per scrape.
func (c *serverCollector) Collect(ch chan<- prometheus.Metric) {
	var s refserver.Stats
	if srv := c.srv.Load(); srv != nil {
		s = srv.Stats()
	}
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

// upstreamQuestion is the body serve -upstream sends.
type upstreamQuestion struct {
	Question json.RawMessage `json:"question"` // null when /answer got none
}

// upstreamCall returns the refserver Upstream function of serve -upstream:
// it POSTs the question to url through client and discards the answer.
func upstreamCall(client *warmpool.Client, url string, log *slog.Logger) func(context.Context, json.RawMessage) error {
	return func(ctx context.Context, question json.RawMessage) error {
		err := client.PostJSON(ctx, url, upstreamQuestion{question}, nil)
		if err != nil && ctx.Err() == nil {
			log.Debug("upstream call failed", "err", err)
		}
		return err
	}
}

// reportUpstream tells stderr how the upstream client's pool fared.
func reportUpstream(stderr io.Writer, client *warmpool.Client) {
	st := client.Stats()
	fmt.Fprintf(stderr, "warmpool serve: upstream: %d requests on %d connections (reuse rate %.1f%%, %d pool timeouts)\n",
		st.Requests, st.Created, 100*st.ReuseRate(), st.PoolTimeouts)
	for _, f := range doctor.Diagnose(st, client.Config()) {
		fmt.Fprintf(stderr, "warmpool serve: upstream pool: %s\n", f)
	}
}
