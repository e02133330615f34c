package warmpool

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// String formats s for people: a line for the client, then a line per host,
// such as
//
//	warmpool: 1000 calls (0 failed), 1000 attempts, reuse 99.9 %, 0 retries (0 refused by the budget), 0 token fetches
//	  127.0.0.1:8080 HTTP/1.1: open 1 (0 in use, 1 idle), created 1, closed 0; requests 1000, reused 999; waits 0, pool timeouts 0; failures 0
//
// with the close reasons, dial failures, failure kinds, a learned idle
// timeout, hedges, the concurrency limit, the circuit breaker and deadline
// rejections added where they are not zero.
func (s Stats) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "warmpool: %d calls (%d failed), %d attempts, reuse %.1f %%, %d retries (%d refused by the budget), %d token fetches",
		s.Calls, s.CallsFailed, s.Requests, 100*s.ReuseRate(), s.Retries, s.BudgetRefusals, s.TokenFetches)
	if s.TokenFetchFailures > 0 {
		fmt.Fprintf(&b, " (%d failed)", s.TokenFetchFailures)
	}
	if s.Hedges > 0 {
		fmt.Fprintf(&b, ", %d hedges (%d won)", s.Hedges, s.HedgeWins)
	}
	for _, host := range s.HostNames() {
		b.WriteString("\n  " + host + " " + s.Hosts[host].String())
	}
	return b.String()
}

// String formats one host's figures on one line (see Stats.String).
func (h HostStats) String() string {
	var b strings.Builder
	if h.Protocol != "" {
		b.WriteString(h.Protocol + ": ")
	}
	fmt.Fprintf(&b, "open %d (%d in use, %d idle), created %d, closed %d", h.Open, h.InUse, h.Idle, h.Created, h.Closed)
	var reasons []string
	for name, n := range h.ClosedBy.All() {
		if n > 0 {
			reasons = append(reasons, fmt.Sprintf("%s %d", name, n))
		}
	}
	if len(reasons) > 0 {
		b.WriteString(" (" + strings.Join(reasons, ", ") + ")")
	}
	fmt.Fprintf(&b, "; requests %d, reused %d; waits %d, pool timeouts %d; failures %d", h.Requests, h.Reused, h.Waits, h.PoolTimeouts, h.Failures)
	if h.Failures > 0 {
		var kinds []string
		for _, k := range slices.Sorted(maps.Keys(h.FailuresByKind)) {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, h.FailuresByKind[k]))
		}
		b.WriteString(" (" + strings.Join(kinds, ", ") + ")")
	}
	if n := h.DialFailures.Total(); n > 0 {
		fmt.Fprintf(&b, "; dial failures %d", n)
	}
	if h.LearnedIdleTimeout > 0 {
		fmt.Fprintf(&b, "; server idle timeout %s (from the %s)", h.LearnedIdleTimeout, h.LearnedIdleTimeoutFrom)
	}
	if h.ConcurrencyLimit > 0 || h.Overloaded+h.Throttled > 0 {
		fmt.Fprintf(&b, "; concurrency limit %d, %d refused, %d throttled", h.ConcurrencyLimit, h.Overloaded, h.Throttled)
	}
	if h.CircuitOpens > 0 || h.CircuitState != "" && h.CircuitState != circuitClosed {
		fmt.Fprintf(&b, "; circuit %s, opened %d times, %d calls failed at once", h.CircuitState, h.CircuitOpens, h.CircuitRejections)
	}
	if h.DeadlineRejections > 0 {
		fmt.Fprintf(&b, "; %d not sent for too little time left", h.DeadlineRejections)
	}
	return b.String()
}
