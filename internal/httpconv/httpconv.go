// Package httpconv holds the low-cardinality names that warmpool's metric
// exporters, prom and otel, give to requests and pool events, so that both
// say the same thing in the same words: the OpenTelemetry HTTP semantic
// conventions where they have a word, warmpool's own otherwise.
package httpconv

import (
	"net"
	"net/http"
	"strconv"

	"github.com/warmpool/warmpool"
)

// SplitHost splits a dialed address ("host:port", "[::1]:443") into
// server.address and server.port. ok is false for an address without a
// valid port; host is then the whole address.
func SplitHost(addr string) (host string, port int, ok bool) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0, false
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		return addr, 0, false
	}
	return h, n, true
}

// Method bounds http.request.method to the methods the conventions know,
// mapping others to "_OTHER", so a caller cannot multiply the series.
func Method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	case "":
		return http.MethodGet // net/http's meaning of an empty method
	}
	return "_OTHER"
}

// ErrorType is the error.type of an attempt that ended with status (0 for
// none) and err: "" for a success; the status code for a response of 400 or
// more, which the conventions count as a failure on the client side; else
// warmpool.ErrorKind of err ("timeout", "refused", "reset", "idle_race",
// "pool_timeout", …): few and fixed, so the attribute stays low in
// cardinality, and the same names the retry policy, the doctor and the CLI
// use.
func ErrorType(status int, err error) string {
	if err == nil {
		if status >= 400 {
			return strconv.Itoa(status)
		}
		return ""
	}
	return warmpool.ErrorKind(err)
}

// Count is one named counter of a breakdown.
type Count struct {
	Name string
	N    int64
}

// CloseReasons lists every close reason, zeros included, under the names of
// warmpool.Hooks.ConnClosed, from warmpool's one table of them. Exporters
// report them all so that a rate sees each series from its first increment.
func CloseReasons(r warmpool.CloseReasons) []Count {
	out := make([]Count, 0, len(warmpool.CloseReasonNames()))
	for name, n := range r.All() {
		out = append(out, Count{name, n})
	}
	return out
}

// DialFailureKinds lists every kind of failed dial, zeros included, from
// warmpool's one table of them.
func DialFailureKinds(d warmpool.DialFailures) []Count {
	out := make([]Count, 0, len(warmpool.DialFailureKinds()))
	for name, n := range d.All() {
		out = append(out, Count{name, n})
	}
	return out
}

// Rejections lists the requests h's pool did not send, by reason, zeros
// included: over the concurrency limit, by client-side throttling, by an
// open circuit breaker, or with less time left than the fastest recent
// answer.
func Rejections(h warmpool.HostStats) []Count {
	return []Count{{"overloaded", h.Overloaded}, {"throttled", h.Throttled},
		{"circuit_open", h.CircuitRejections}, {"deadline", h.DeadlineRejections}}
}

// CircuitStates are the states of HostStats.CircuitState, each reported
// (1 for the state now, else 0) so that a backend sees every series from
// the start.
var CircuitStates = []string{"closed", "open", "half_open"}

// Seconds is one named duration of a breakdown, in seconds.
type Seconds struct {
	Name string
	S    float64
}

// RecentLatency lists h's recent latencies by percentile: "min", "p50",
// "p95", "p99".
func RecentLatency(h warmpool.HostStats) []Seconds {
	return []Seconds{{"min", h.LatencyMin.Seconds()}, {"p50", h.LatencyP50.Seconds()},
		{"p95", h.LatencyP95.Seconds()}, {"p99", h.LatencyP99.Seconds()}}
}
