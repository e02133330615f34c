package doctor

import (
	"fmt"
	"strings"

	"github.com/warmpool/warmpool"
)

// namedElsewhere are the error kinds (warmpool.ErrorKinds) that a rule other
// than failed-requests names, from a figure of its own, with that rule.
// failed-requests counts every other kind, so a kind added to warmpool's
// table is reported from the start.
var namedElsewhere = map[string]string{
	"idle_race":    "idle-race",
	"pool_timeout": "pool-timeouts", // from HostStats.PoolTimeouts
	"status":       "",              // an answer, not a failed attempt: never counted in FailuresByKind
	"refused":      "dial-failures", // from HostStats.DialFailures
	"dns":          "dial-failures",
	"tls":          "dial-failures",
	"certificate":  "dial-failures",
	"token":        "token-failures",
}

// failureFixes advise on failures of each kind of warmpool.ErrorKinds, for
// the failed-requests finding, by the most frequent kind. Every kind has an
// entry (TestEveryErrorKindHasAFix).
var failureFixes = map[string]string{
	"timeout":        "the server or the network is slower than request_timeout or connection_timeout: find out which, and raise the timeout only if the slowness is expected",
	"refused":        fixReachability,
	"dns":            fixReachability,
	"tls":            fixReachability,
	"certificate":    fixReachability,
	"reset":          "the server or a proxy broke connections mid-exchange: check its logs and limits; idempotent requests are retried",
	"token":          fixToken,
	"insecure_token": fixToken,
	"closed":         fixOwnCancel,
	"canceled":       fixOwnCancel,
	"too_large":      "raise max_response_bytes if such answers are expected",
	"status":         fixLookAtErrors,
	"content_type":   fixLookAtErrors,
	"pool_timeout":   fixLookAtErrors,
	"overloaded":     "the backend is past the capacity the concurrency limit measured: give it capacity or lower the load; limit_queue_timeout lets calls wait for a slot instead of failing at once",
	"circuit_open":   "the backend is down (its circuit breaker is open): find why; calls fail at once until a probe succeeds, circuit_breaker_open_for after it opened",
	"idle_race":      fixLookAtErrors,
	"other":          fixLookAtErrors,
}

const (
	fixReachability = "check the URL, that the server is up, and its certificate"
	fixToken        = "check the token source, and send tokens over https"
	fixOwnCancel    = "calls were cut short by Close or their own context; nothing to fix in the pool"
	fixLookAtErrors = "look at the errors the calls returned"
)

// dialAdvice says what failed dials of each kind of
// warmpool.DialFailureKinds mean and what to check (TestEveryDialKindHasAdvice).
var dialAdvice = map[string]func(warmpool.Config) (msg, fix string){
	"refused": func(warmpool.Config) (string, string) {
		return "connection attempts were refused", "check the URL's host and port: nothing listens there, or the server is restarting or overloaded"
	},
	"dns": func(warmpool.Config) (string, string) {
		return "name lookups failed", "check the host name and the resolver"
	},
	"tls": func(warmpool.Config) (string, string) {
		return "TLS handshakes failed", "check the server's certificate and the roots the client trusts (WithTLSConfig), and that both sides share a TLS version"
	},
	"timeout": func(cfg warmpool.Config) (string, string) {
		return fmt.Sprintf("connection attempts timed out after connection_timeout (%s)", cfg.ConnectionTimeout),
			"check that the server is reachable and not overloaded; raise connection_timeout only for a slow network"
	},
	"other": func(warmpool.Config) (string, string) {
		return "connection attempts failed", "check the address and the network"
	},
}

// idleRaceRule: requests failed because the server closed the pooled
// connection they were sent on, idle, as they went out.
func idleRaceRule(h warmpool.HostStats, cfg warmpool.Config) (Finding, bool) {
	n := h.FailuresByKind["idle_race"]
	if n == 0 {
		return Finding{}, false
	}
	msg := fmt.Sprintf("%d requests failed because the server closed the idle pooled connection they were sent on (*IdleCloseError): its idle timeout is shorter than keepalive_expiry (%s)",
		n, cfg.KeepaliveExpiry)
	fix := "set keepalive_expiry below the server's idle timeout, or send an Idempotency-Key (WithIdempotencyKeys) so such calls are retried"
	if h.LearnedIdleTimeout > 0 {
		msg += fmt.Sprintf("; warmpool has since learned it (%s, from the %s) and closes idle connections before it", h.LearnedIdleTimeout, h.LearnedIdleTimeoutFrom)
		fix = fmt.Sprintf("set keepalive_expiry below %s so that the first requests do not fail either, or send an Idempotency-Key (WithIdempotencyKeys)", h.LearnedIdleTimeout)
	}
	return Finding{Rule: "idle-race", Severity: SeverityError, Value: float64(n), Message: msg, Fix: fix}, true
}

// failedRequestsRule: attempts that failed for any reason the other rules
// do not name, by kind, in warmpool.ErrorKinds order.
func failedRequestsRule(h warmpool.HostStats, _ warmpool.Config) (Finding, bool) {
	var parts []string
	var n int64
	for _, k := range warmpool.ErrorKinds() {
		if _, named := namedElsewhere[k]; named {
			continue
		}
		if v := h.FailuresByKind[k]; v > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", v, k))
			n += v
		}
	}
	if n == 0 {
		return Finding{}, false
	}
	return Finding{
		Rule: "failed-requests", Severity: SeverityError, Value: float64(n),
		Message: fmt.Sprintf("%d attempts failed: %s", n, strings.Join(parts, ", ")),
		Fix:     failureFix(h.FailuresByKind),
	}, true
}

// failureFix advises on the most frequent kind of failure, the first in
// warmpool.ErrorKinds order among equals.
func failureFix(by map[string]int64) string {
	top, most := "", int64(0)
	for _, k := range warmpool.ErrorKinds() {
		if by[k] > most {
			top, most = k, by[k]
		}
	}
	if fix, ok := failureFixes[top]; ok {
		return fix
	}
	return fixLookAtErrors
}

// dialFindings reports each kind of dial failure seen at least minFailures
// times, in warmpool.DialFailureKinds order.
func dialFindings(host string, d warmpool.DialFailures, cfg warmpool.Config) []Finding {
	var out []Finding
	for kind, n := range d.All() {
		if n < minFailures {
			continue
		}
		msg, fix := "connection attempts failed ("+kind+")", "check the address and the network"
		if advice, ok := dialAdvice[kind]; ok {
			msg, fix = advice(cfg)
		}
		out = append(out, Finding{Rule: "dial-failures", Severity: SeverityError, Host: host, Value: float64(n),
			Message: fmt.Sprintf("%d %s", n, msg), Fix: fix})
	}
	return out
}

// clientFindings are the rules on client-wide figures.
func clientFindings(s warmpool.Stats, cfg warmpool.Config) []Finding {
	var out []Finding
	if s.BudgetRefusals > 0 {
		out = append(out, Finding{
			Rule: "retry-budget", Severity: SeverityError, Value: float64(s.BudgetRefusals),
			Message: fmt.Sprintf("the retry budget refused %d retries (%d made): so many requests failed that retries would exceed retry_budget_percent (%g %%) of requests",
				s.BudgetRefusals, s.Retries, cfg.RetryBudgetPercent),
			Fix: "find why the backend fails; the budget is holding retries back so as not to add to its load",
		})
	}
	var tokenFailed int64
	for _, h := range s.Hosts {
		tokenFailed += h.FailuresByKind["token"]
	}
	if s.TokenFetchFailures > 0 || tokenFailed > 0 {
		out = append(out, Finding{
			Rule: "token-failures", Severity: SeverityError, Value: float64(max(s.TokenFetchFailures, tokenFailed)),
			Message: fmt.Sprintf("%d of %d token fetches failed, and %d requests failed for want of a token (source failing or slower than request_timeout)",
				s.TokenFetchFailures, s.TokenFetches, tokenFailed),
			Fix: "check the token source: its credentials, audience and reachability",
		})
	}
	return out
}
