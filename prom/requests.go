package prom

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/httpconv"
)

// DefaultBuckets are the upper bounds, in seconds, of the request duration
// histogram: those the OpenTelemetry semantic conventions advise for
// http.client.request.duration.
var DefaultBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// RequestCollector exports per-attempt figures that a Stats snapshot does not
// hold: how long attempts took and what status they got. It is fed by the
// RequestDone hook it returns from Hooks, so it is created before the client
// and registered next to NewCollector's collector.
type RequestCollector struct {
	duration  *prometheus.HistogramVec
	responses *prometheus.CounterVec
}

// NewRequestCollector returns an empty RequestCollector. WithBuckets sets its
// histogram buckets; WithNamespace and WithConstLabels apply as for
// NewCollector.
func NewRequestCollector(opts ...Option) *RequestCollector {
	o := newOptions(opts)
	return &RequestCollector{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace:   o.namespace,
			Name:        "request_duration_seconds",
			Help:        "Duration of request attempts, from sending until the response body was done; error_type is set for failures: the status code from 400 up, else a kind of error.",
			ConstLabels: o.constLabels,
			Buckets:     o.buckets,
		}, []string{"server_address", "server_port", "http_request_method", "http_response_status_code", "error_type"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace:   o.namespace,
			Name:        "responses_total",
			Help:        "Responses received, by status code, retried attempts included.",
			ConstLabels: o.constLabels,
		}, []string{"server_address", "server_port", "http_response_status_code"}),
	}
}

// Hooks returns warmpool.Hooks with RequestDone set to feed r. Pass it to
// warmpool.WithHooks; to add hooks of your own, set the other fields of the
// returned value.
func (r *RequestCollector) Hooks() warmpool.Hooks {
	return warmpool.Hooks{RequestDone: r.observe}
}

// observe records one finished attempt. It is called concurrently, from the
// goroutines that finish requests.
// An attempt without a response has an empty http_response_status_code,
// which Prometheus treats as no label.
func (r *RequestCollector) observe(info warmpool.RequestInfo) {
	host, port := serverLabels(info.Host)
	if info.HostName != "" { // an endpoint of a balanced name: label the name, as the pool series do
		host, port, _ = hostLabels(info.Host, warmpool.HostStats{HostName: info.HostName})
	}
	code := ""
	if info.StatusCode != 0 {
		code = statusCode(info.StatusCode)
		r.responses.WithLabelValues(host, port, code).Inc()
	}
	r.duration.WithLabelValues(host, port, httpconv.Method(info.Method), code,
		httpconv.ErrorType(info.StatusCode, info.Err)).Observe(info.Duration.Seconds())
}

// Describe implements prometheus.Collector.
func (r *RequestCollector) Describe(ch chan<- *prometheus.Desc) {
	r.duration.Describe(ch)
	r.responses.Describe(ch)
}

// Collect implements prometheus.Collector.
func (r *RequestCollector) Collect(ch chan<- prometheus.Metric) {
	r.duration.Collect(ch)
	r.responses.Collect(ch)
}

// codes holds the label of every valid status code, so that observe does not
// allocate one per request.
var codes = func() (c [500]string) {
	for i := range c {
		c[i] = strconv.Itoa(100 + i)
	}
	return c
}()

func statusCode(code int) string {
	if code >= 100 && code <= 599 {
		return codes[code-100]
	}
	return strconv.Itoa(code)
}
