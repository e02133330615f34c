// Package doctor judges a warmpool client's pool from a Stats snapshot and
// says, in plain language, what looks wrong and which setting or code to
// change:
//
//	for _, f := range doctor.Diagnose(client.Stats(), client.Config()) {
//		logger.Warn("warmpool: " + f.String())
//	}
//
// It is a pure function of warmpool's public Stats and Config, like the
// exporters of packages prom and otel: everything it judges is in the
// snapshot, so it can as well judge one taken elsewhere, such as one a
// benchmark saved.
//
// Importing the package also makes its findings appear on warmpool's debug
// page (see internal/diaghook), which cannot import it.
package doctor

import (
	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/diaghook"
)

// Finding is one problem Diagnose saw in a pool: what was seen, the figure
// that showed it, and the setting or code to change. Its Rule is one of
// Rules; its Host the dialed address ("host:port") it concerns, "" for the
// whole client.
type Finding = diaghook.Finding

// Severity says whether a finding costs performance or failed requests.
type Severity = diaghook.Severity

const (
	// SeverityWarning: requests succeeded, but paid for new connections or
	// waited for one.
	SeverityWarning Severity = "warning"
	// SeverityError: requests failed because of it.
	SeverityError Severity = "error"
)

// rules are the names of the checks, stable for alerting and tests, in the
// order their findings are listed for a host.
var rules = []string{
	"idle-race", "failed-requests", "circuit-open", "overloaded", "pool-timeouts", "pool-waits", "unread-bodies", "server-closed-idle",
	"learned-idle-timeout", "goaway-churn", "unused-dials", "idle-churn", "max-age-churn", "hedging-would-help", "dial-failures",
	"endpoint-pinned", "endpoint-skew", "frequent-ejections", "retry-budget", "token-failures",
}

// Rules lists the name of every check Diagnose makes, as Finding.Rule gives
// it.
func Rules() []string { return append([]string(nil), rules...) }

func init() {
	diaghook.Register(func(stats, cfg any) []diaghook.Finding {
		s, _ := stats.(warmpool.Stats)
		if p, ok := stats.(*warmpool.Stats); ok && p != nil {
			s = *p
		}
		c, _ := cfg.(warmpool.Config)
		if p, ok := cfg.(*warmpool.Config); ok && p != nil {
			c = *p
		}
		return Diagnose(s, c)
	})
}

// Diagnose reads a Stats snapshot and returns what looks wrong with the
// pool, worst first within each host, then the endpoints of balanced host
// names and the client-wide rules; nothing when it is healthy. cfg is the
// client's configuration, used to name settings and their values in the
// fixes: pass Client.Config, which holds the settings in effect. A zero
// field counts as its default (DefaultConfig's value).
//
// The figures are cumulative since the client started, so a problem shows
// for as long as its share of all requests stays above a threshold.
func Diagnose(s warmpool.Stats, cfg warmpool.Config) []Finding {
	cfg = cfg.WithDefaults()
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
