package prom

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler returns an http.Handler that serves the metrics of cs, and only
// those, in the Prometheus text format: it registers them on a registry of
// its own, never prometheus.DefaultRegisterer, so no Go runtime or process
// metrics come along. Mount it as "GET /metrics".
//
// Like prometheus.MustRegister, it panics if a collector cannot be
// registered: two collectors exporting the same metric names without
// WithConstLabels to tell them apart, or a collector given twice.
func Handler(cs ...prometheus.Collector) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(cs...)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
