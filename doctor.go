package warmpool

import (
	"fmt"
	"strings"
	"time"
)

// Finding is one problem Diagnose saw in a pool, in plain language: what was
// seen, the figure that showed it, and the setting or code to change.
type Finding struct {
	// Rule names the check that fired, stable for alerting and tests:
	// "idle-race", "failed-requests", "server-closed-idle",
	// "learned-idle-timeout", "goaway-churn", "unused-dials",
	// "unread-bodies", "idle-churn", "max-age-churn", "pool-waits",
	// "pool-timeouts", "dial-failures", "endpoint-pinned", "endpoint-skew",
	// "frequent-ejections", "retry-budget", "token-failures".
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	Host     string   `json:"host"`    // the dialed address ("host:port") it concerns; "" for the whole client
	Message  string   `json:"message"` // what was seen, with the figure that triggered the rule
	Fix      string   `json:"fix"`     // what to change, naming the setting by its config key
	Value    float64  `json:"value"`   // that figure: a share from 0 to 1, or a count
}

// Severity says whether a finding costs performance or failed requests.
type Severity string

const (
	// SeverityWarning: requests succeeded, but paid for new connections or
	// waited for one.
	SeverityWarning Severity = "warning"
	// SeverityError: requests failed because of it.
	SeverityError Severity = "error"
)

// String formats f on one line, such as
// "warning: 127.0.0.1:8080: … ; fix: …".
func (f Finding) String() string {
	s := string(f.Severity) + ": "
	if f.Host != "" {
		s += f.Host + ": "
	}
	return s + f.Message + "; fix: " + f.Fix
}

// Thresholds of the rules. A share is of the host's requests (attempts that
// got a connection). Rules on shares wait for minRequests, so that a cold
// pool is not judged by its first few requests; rules on failures fire from
// minFailures.
const (
	minRequests    = 20
	minFailures    = 1    // any failure is a finding
	closeShare     = 0.10 // connections closed for one reason, per request
	serverShare    = 0.05 // connections the server closed idle, per request
	waitShare      = 0.05 // requests that waited for a connection
	minWaitCount   = 3
	minCloseCounts = 3
)

// Diagnose reads a Stats snapshot and returns what looks wrong with the
// pool, worst first within each host, or nothing when it is healthy. cfg is
// the client's configuration (Client.Config), used to name settings and
// their values in the fixes; zero fields count as their defaults.
//
// The figures are cumulative since the client started, so a problem shows
// for as long as its share of all requests stays above a threshold. Typical
// use is a periodic log line or a debug endpoint:
//
//	for _, f := range warmpool.Diagnose(client.Stats(), client.Config()) {
//		logger.Warn("warmpool: " + f.String())
//	}
//
// Diagnose is a function of a snapshot rather than a Client method so that it
// can also judge a snapshot taken elsewhere, such as one a benchmark saved.
func Diagnose(s Stats, cfg Config) []Finding {
	cfg = cfg.withDefaults()
	var out []Finding
	for _, host := range s.HostNames() {
		h := s.Hosts[host]
		for _, rule := range hostRules {
			if f, ok := rule(h, cfg); ok {
				f.Host = host
				out = append(out, f)
			}
		}
		out = append(out, dialFindings(host, h.DialFailures, cfg)...)
	}
	out = append(out, endpointFindings(s, cfg)...)
	return append(out, clientFindings(s, cfg)...)
}

// hostRules run on each host's figures, in the order findings are listed.
var hostRules = []func(HostStats, Config) (Finding, bool){
	idleRaceRule,
	failedRequestsRule,
	poolTimeoutRule,
	poolWaitRule,
	unreadBodyRule,
	serverClosedRule,
	learnedIdleRule,
	goAwayChurnRule,
	unusedDialsRule,
	idleChurnRule,
	maxAgeRule,
}

func pct(f float64) string { return fmt.Sprintf("%.0f %%", 100*f) }

// churn is how many of n connections closed for some reason forced a later
// request to open a new one: at most the requests that did not reuse a
// connection. A close that cost nothing, such as net/http dropping a
// duplicate HTTP/2 connection it dialed in a race, is not held against the
// pool. share is that count per request.
func churn(n int64, h HostStats) (cost int64, sh float64) {
	cost = min(n, h.Requests-h.Reused)
	return cost, share(cost, h.Requests)
}

func share(n, of int64) float64 {
	if of <= 0 {
		return 0
	}
	return float64(n) / float64(of)
}

func poolTimeoutRule(h HostStats, cfg Config) (Finding, bool) {
	if h.PoolTimeouts == 0 {
		return Finding{}, false
	}
	return Finding{
		Rule: "pool-timeouts", Severity: SeverityError, Value: float64(h.PoolTimeouts),
		Message: fmt.Sprintf("%d requests failed with ErrPoolTimeout after waiting pool_timeout (%s) while all max_connections (%d) were busy",
			h.PoolTimeouts, cfg.PoolTimeout, cfg.MaxConnections),
		Fix: "raise max_connections or lower the concurrency; check that every response body is closed, since an open body holds its connection",
	}, true
}

func poolWaitRule(h HostStats, cfg Config) (Finding, bool) {
	sh := share(h.Waits, h.Requests+h.PoolTimeouts)
	if h.Requests < minRequests || h.Waits < minWaitCount || sh < waitShare {
		return Finding{}, false
	}
	mean := (h.WaitTime / time.Duration(h.Waits)).Round(100 * time.Microsecond)
	return Finding{
		Rule: "pool-waits", Severity: SeverityWarning, Value: sh,
		Message: fmt.Sprintf("requests waited for a connection %s of the time (%d waits, mean %s): all max_connections (%d) were busy",
			pct(sh), h.Waits, mean, cfg.MaxConnections),
		Fix: "raise max_connections or lower the concurrency",
	}, true
}

func unreadBodyRule(h HostStats, _ Config) (Finding, bool) {
	n, sh := churn(h.ClosedBy.Other, h)
	if h.Requests < minRequests || n < minCloseCounts || sh < closeShare {
		return Finding{}, false
	}
	return Finding{
		Rule: "unread-bodies", Severity: SeverityWarning, Value: sh,
		Message: fmt.Sprintf("connections are closed after %s of responses (%d of %d requests): response bodies are not being read to the end, or the server answers \"Connection: close\"",
			pct(sh), n, h.Requests),
		Fix: "read each response body to EOF before closing it (io.Copy(io.Discard, resp.Body)), as PostJSON does; if the server sends Connection: close, have it keep connections alive",
	}, true
}

func serverClosedRule(h HostStats, cfg Config) (Finding, bool) {
	n, sh := churn(h.ClosedBy.Server, h)
	if h.Protocol == "HTTP/2" || h.Requests < minRequests || n < minCloseCounts || sh < serverShare {
		return Finding{}, false // over HTTP/2, goAwayChurnRule speaks of it
	}
	sev := SeverityWarning
	if h.FailuresByKind["idle_race"] > 0 {
		sev = SeverityError // requests are failing because of it
	}
	return Finding{
		Rule: "server-closed-idle", Severity: sev, Value: float64(h.ClosedBy.Server),
		Message: fmt.Sprintf("the server closed %d idle connections before keepalive_expiry (%s) ran out, making %s of requests open a new one: its idle timeout is shorter, and a request sent as it closes one can fail",
			h.ClosedBy.Server, cfg.KeepaliveExpiry, pct(sh)),
		Fix: "lower keepalive_expiry below the server's idle timeout (or raise the server's)",
	}, true
}

// idleRaceRule: requests failed because the server closed the pooled
// connection they were sent on, idle, as they went out.
func idleRaceRule(h HostStats, cfg Config) (Finding, bool) {
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
// do not name, by kind.
func failedRequestsRule(h HostStats, _ Config) (Finding, bool) {
	var parts []string
	var n int64
	for _, k := range errorKinds {
		switch k {
		case "idle_race", "pool_timeout", "status", "refused", "dns", "tls", "certificate", "token":
			continue // idleRaceRule, poolTimeoutRule, dialFindings and the token rule name them
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

// failureFix advises on the most frequent kind of failure.
func failureFix(by map[string]int64) string {
	top, most := "", int64(0)
	for _, k := range errorKinds {
		if by[k] > most {
			top, most = k, by[k]
		}
	}
	switch top {
	case "timeout":
		return "the server or the network is slower than request_timeout or connection_timeout: find out which, and raise the timeout only if the slowness is expected"
	case "refused", "dns", "tls", "certificate":
		return "check the URL, that the server is up, and its certificate"
	case "reset":
		return "the server or a proxy broke connections mid-exchange: check its logs and limits; idempotent requests are retried"
	case "token", "insecure_token":
		return "check the token source, and send tokens over https"
	case "closed", "canceled":
		return "calls were cut short by Close or their own context; nothing to fix in the pool"
	case "too_large":
		return "raise max_response_bytes if such answers are expected"
	}
	return "look at the errors the calls returned"
}

// learnedIdleRule: the server's idle timeout, learned, is shorter than
// keepalive_expiry.
func learnedIdleRule(h HostStats, cfg Config) (Finding, bool) {
	if h.LearnedIdleTimeout <= 0 || h.LearnedIdleTimeout >= cfg.KeepaliveExpiry {
		return Finding{}, false
	}
	return Finding{
		Rule: "learned-idle-timeout", Severity: SeverityWarning, Value: h.LearnedIdleTimeout.Seconds(),
		Message: fmt.Sprintf("the server closes connections idle for %s (learned from the %s), less than keepalive_expiry (%s): warmpool closes them first, before reuse",
			h.LearnedIdleTimeout, h.LearnedIdleTimeoutFrom, cfg.KeepaliveExpiry),
		Fix: fmt.Sprintf("set keepalive_expiry below %s so that a new process does not have to learn it from a failed or retried request", h.LearnedIdleTimeout),
	}, true
}

// goAwayChurnRule: an HTTP/2 server that ends connections (GOAWAY) every
// few requests, so the pool keeps dialing.
func goAwayChurnRule(h HostStats, _ Config) (Finding, bool) {
	n := h.ClosedBy.Server
	if h.Protocol != "HTTP/2" || n < minCloseCounts || h.Requests < minRequests || h.Requests/n >= 1000 {
		return Finding{}, false
	}
	return Finding{
		Rule: "goaway-churn", Severity: SeverityWarning, Value: float64(n),
		Message: fmt.Sprintf("the server ended %d HTTP/2 connections in %d requests (one every %d): it sends GOAWAY after a number of requests, and each costs a new connection",
			n, h.Requests, h.Requests/n),
		Fix: "raise the server's limit of requests per connection (nginx keepalive_requests, envoy max_requests_per_connection)",
	}, true
}

// unusedDialsRule: connections dialed and closed without serving a request.
func unusedDialsRule(h HostStats, _ Config) (Finding, bool) {
	n := h.ClosedBy.Unused
	if n < minCloseCounts || share(n, h.Created) < closeShare {
		return Finding{}, false
	}
	return Finding{
		Rule: "unused-dials", Severity: SeverityWarning, Value: float64(n),
		Message: fmt.Sprintf("%d of %d connections were dialed and closed without serving a request (%d dials held back and dropped)",
			n, h.Created, h.DialsAvoided),
		Fix: "usually bursts of requests racing a connection that was about to free up; if it persists, report it with these figures",
	}, true
}

// idleChurnRule: idle connections closed by warmpool between bursts of
// requests, by keepalive_expiry or by trimming to recent demand, only to be
// dialed again.
func idleChurnRule(h HostStats, cfg Config) (Finding, bool) {
	n := h.ClosedBy.IdleExpiry + h.ClosedBy.Trim
	cost, sh := churn(n, h)
	if h.Requests < minRequests || cost < minCloseCounts || sh < closeShare {
		return Finding{}, false
	}
	f := Finding{Rule: "idle-churn", Severity: SeverityWarning, Value: sh}
	newShare := 1 - h.ReuseRate()
	if h.ClosedBy.Trim > h.ClosedBy.IdleExpiry {
		f.Message = fmt.Sprintf("%s of requests opened a new connection: %d idle connections were trimmed because fewer requests were in flight over the last %s (a tenth of keepalive_expiry, at least 1s), and max_keepalive_connections (%d) keeps no more warm",
			pct(newShare), n, demandWindow(cfg.KeepaliveExpiry), cfg.MaxKeepaliveConnections)
		f.Fix = "raise max_keepalive_connections to the number of requests in flight at a burst"
	} else {
		f.Message = fmt.Sprintf("%s of requests opened a new connection: %d connections sat idle for keepalive_expiry (%s) and were closed before the next burst",
			pct(newShare), n, cfg.KeepaliveExpiry)
		f.Fix = "raise keepalive_expiry above the usual gap between bursts of requests (keeping it below the server's idle timeout)"
	}
	return f, true
}

func maxAgeRule(h HostStats, cfg Config) (Finding, bool) {
	cost, sh := churn(h.ClosedBy.MaxAge, h)
	if h.Requests < minRequests || cost < minCloseCounts || sh < closeShare {
		return Finding{}, false
	}
	return Finding{
		Rule: "max-age-churn", Severity: SeverityWarning, Value: sh,
		Message: fmt.Sprintf("max_connection_age (%s) retired %d connections, making %s of requests open a new one: far more often than rebalancing needs",
			cfg.MaxConnectionAge, h.ClosedBy.MaxAge, pct(sh)),
		Fix: "raise max_connection_age to minutes, or set it to 0 if the backend's address set does not change",
	}, true
}

// dialFindings reports each kind of dial failure seen at least minFailures
// times.
func dialFindings(host string, d DialFailures, cfg Config) []Finding {
	var out []Finding
	for _, k := range []struct {
		n        int64
		msg, fix string
	}{
		{d.Refused, "connection attempts were refused", "check the URL's host and port: nothing listens there, or the server is restarting or overloaded"},
		{d.DNS, "name lookups failed", "check the host name and the resolver"},
		{d.TLS, "TLS handshakes failed", "check the server's certificate and the roots the client trusts (WithTLSConfig), and that both sides share a TLS version"},
		{d.Timeout, fmt.Sprintf("connection attempts timed out after connection_timeout (%s)", cfg.ConnectionTimeout), "check that the server is reachable and not overloaded; raise connection_timeout only for a slow network"},
		{d.Other, "connection attempts failed", "check the address and the network"},
	} {
		if k.n >= minFailures {
			out = append(out, Finding{Rule: "dial-failures", Severity: SeverityError, Host: host, Value: float64(k.n),
				Message: fmt.Sprintf("%d %s", k.n, k.msg), Fix: k.fix})
		}
	}
	return out
}

// clientFindings are the rules on client-wide figures.
func clientFindings(s Stats, cfg Config) []Finding {
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
