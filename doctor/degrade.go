package doctor

import (
	"fmt"
	"time"

	"github.com/warmpool/warmpool"
)

// Rules on graceful degradation: a backend past its capacity, down, or with
// a slow tail (see warmpool.Config.ConcurrencyLimit, CircuitBreakerFailures
// and HedgeAfter).

// circuitOpenRule: the breaker failed calls at once, or is open now.
func circuitOpenRule(h warmpool.HostStats, cfg warmpool.Config) (Finding, bool) {
	if h.CircuitRejections == 0 && h.CircuitState != "open" && h.CircuitState != "half_open" {
		return Finding{}, false
	}
	return Finding{
		Rule:     "circuit-open",
		Severity: SeverityError,
		Message: fmt.Sprintf("the circuit breaker opened %d times and failed %d calls at once (ErrCircuitOpen), not sent; it is %s now",
			h.CircuitOpens, h.CircuitRejections, h.CircuitState),
		Fix: fmt.Sprintf("find why the backend is down (failed dials, timeouts, 502/503/504); circuit_breaker_failures (%d) opens it, circuit_breaker_open_for (%s) is how long until a probe",
			cfg.CircuitBreakerFailures, cfg.CircuitBreakerOpenFor),
		Value: float64(h.CircuitRejections),
	}, true
}

// overloadedRule: calls were refused as over the backend's capacity, or,
// without a limit, latency climbs with the requests in flight: they queue
// at the backend.
func overloadedRule(h warmpool.HostStats, cfg warmpool.Config) (Finding, bool) {
	if n := h.Overloaded + h.Throttled; n > 0 {
		return Finding{
			Rule:     "overloaded",
			Severity: SeverityError,
			Message: fmt.Sprintf("%d calls were not sent as the backend was past its capacity: %d refused at the concurrency limit (%d now; %d queued, %s in all), %d by client-side throttling after 429/503 answers",
				n, h.Overloaded, h.ConcurrencyLimit, h.LimitWaits, h.LimitWaitTime.Round(time.Millisecond), h.Throttled),
			Fix:   "give the backend capacity or lower the load; set limit_queue_timeout to let calls wait briefly for a slot instead of failing at once",
			Value: float64(n),
		}, true
	}
	if cfg.ConcurrencyLimit != "" && cfg.ConcurrencyLimit != "off" || h.Requests < minRequests || h.LatencyMin <= 0 ||
		h.LatencyP50 < queueFactor*h.LatencyMin || h.LatencyP50 < minQueueLatency || h.PeakInFlight < minQueue {
		return Finding{}, false
	}
	return Finding{
		Rule:     "overloaded",
		Severity: SeverityWarning,
		Message: fmt.Sprintf("latency climbs with the load: the median answer took %s, %.0f× the fastest (%s), with up to %d requests in flight: they queue at the backend",
			h.LatencyP50, float64(h.LatencyP50)/float64(h.LatencyMin), h.LatencyMin, h.PeakInFlight),
		Fix:   "set concurrency_limit: adaptive, so that calls past the backend's capacity fail at once (ErrOverloaded) instead of waiting out their deadline in its queue",
		Value: float64(h.LatencyP50) / float64(h.LatencyMin),
	}, true
}

// hedgingRule: the slowest answers take many times the median.
func hedgingRule(h warmpool.HostStats, cfg warmpool.Config) (Finding, bool) {
	if cfg.HedgeAfter != "" || h.Requests < minHedgeRequests || h.LatencyP50 <= 0 ||
		h.LatencyP99 < tailFactor*h.LatencyP50 || h.LatencyP99 < minTail {
		return Finding{}, false
	}
	return Finding{
		Rule:     "hedging-would-help",
		Severity: SeverityWarning,
		Message: fmt.Sprintf("a slow tail: the 99th percentile answer took %s, %.0f× the median (%s)",
			h.LatencyP99, float64(h.LatencyP99)/float64(h.LatencyP50), h.LatencyP50),
		Fix: fmt.Sprintf("if these calls are idempotent (GET, PUT, DELETE, or with an Idempotency-Key), set hedge_after: p95: a second request after the 95th percentile cuts the tail for at most hedge_max_extra_percent (%g %%) more requests",
			cfg.HedgeMaxExtraPercent),
		Value: float64(h.LatencyP99) / float64(h.LatencyP50),
	}, true
}

const (
	queueFactor      = 5                      // median over fastest: requests queue at the backend
	minQueue         = 4                      // requests in flight for a queue to be the load's doing
	minQueueLatency  = 100 * time.Millisecond // a median below this is no queue worth a limit (nor a loaded test machine's)
	tailFactor       = 10
	minHedgeRequests = 100
	minTail          = 100 * time.Millisecond // a tail below this is a loaded machine's, not worth hedging
)
