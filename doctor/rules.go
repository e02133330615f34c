package doctor

import (
	"fmt"
	"time"

	"github.com/warmpool/warmpool"
)

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

// hostRules run on each host's figures, in the order findings are listed.
var hostRules = []func(warmpool.HostStats, warmpool.Config) (Finding, bool){
	idleRaceRule,
	failedRequestsRule,
	circuitOpenRule,
	overloadedRule,
	poolTimeoutRule,
	poolWaitRule,
	unreadBodyRule,
	serverClosedRule,
	learnedIdleRule,
	goAwayChurnRule,
	unusedDialsRule,
	idleChurnRule,
	maxAgeRule,
	hedgingRule,
}

func pct(f float64) string { return fmt.Sprintf("%.0f %%", 100*f) }

// churn is how many of n connections closed for some reason forced a later
// request to open a new one: at most the requests that did not reuse a
// connection. A close that cost nothing, such as net/http dropping a
// duplicate HTTP/2 connection it dialed in a race, is not held against the
// pool. share is that count per request.
func churn(n int64, h warmpool.HostStats) (cost int64, sh float64) {
	cost = min(n, h.Requests-h.Reused)
	return cost, share(cost, h.Requests)
}

func share(n, of int64) float64 {
	if of <= 0 {
		return 0
	}
	return float64(n) / float64(of)
}

// demandWindow is how far back warmpool's trim looks for demand: a tenth of
// keepalive_expiry, at least a second, at most keepalive_expiry (as
// Config.MaxKeepaliveConnections documents it).
func demandWindow(expiry time.Duration) time.Duration {
	return min(max(expiry/10, time.Second), expiry)
}

func poolTimeoutRule(h warmpool.HostStats, cfg warmpool.Config) (Finding, bool) {
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

func poolWaitRule(h warmpool.HostStats, cfg warmpool.Config) (Finding, bool) {
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

func unreadBodyRule(h warmpool.HostStats, _ warmpool.Config) (Finding, bool) {
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

func serverClosedRule(h warmpool.HostStats, cfg warmpool.Config) (Finding, bool) {
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

// learnedIdleRule: the server's idle timeout, learned, is shorter than
// keepalive_expiry.
func learnedIdleRule(h warmpool.HostStats, cfg warmpool.Config) (Finding, bool) {
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
func goAwayChurnRule(h warmpool.HostStats, _ warmpool.Config) (Finding, bool) {
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
func unusedDialsRule(h warmpool.HostStats, _ warmpool.Config) (Finding, bool) {
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
func idleChurnRule(h warmpool.HostStats, cfg warmpool.Config) (Finding, bool) {
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

func maxAgeRule(h warmpool.HostStats, cfg warmpool.Config) (Finding, bool) {
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
