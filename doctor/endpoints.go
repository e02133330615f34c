package doctor

import (
	"fmt"
	"slices"
	"strings"

	"github.com/warmpool/warmpool"
)

// Rules on the endpoints of balanced host names, judged together: the
// Stats.Hosts entries that share a HostName and port.
const (
	pinnedShare    = 0.90 // one endpoint's share of its name's requests, with others active
	skewFactor     = 1.5  // the busiest endpoint's share over an even share
	frequentEjects = 3    // ejections of one endpoint
)

// endpointGroup is the endpoints of one host name and port.
type endpointGroup struct {
	name  string   // "host:port"
	keys  []string // Stats.Hosts keys, sorted
	total int64    // requests over them
}

// endpointGroups gathers the endpoints of s by host name and port, leaving
// out removed ones, which took their requests before they left.
func endpointGroups(s warmpool.Stats) []*endpointGroup {
	by := map[string]*endpointGroup{}
	var order []string
	for _, key := range s.HostNames() {
		h := s.Hosts[key]
		if h.HostName == "" || h.EndpointState == "removed" {
			continue
		}
		addr, _, _ := strings.Cut(key, "@")
		port := addr[strings.LastIndexByte(addr, ':')+1:]
		name := h.HostName + ":" + port
		g := by[name]
		if g == nil {
			g = &endpointGroup{name: name}
			by[name] = g
			order = append(order, name)
		}
		g.keys = append(g.keys, key)
		g.total += h.Requests
	}
	slices.Sort(order)
	out := make([]*endpointGroup, len(order))
	for i, name := range order {
		out[i] = by[name]
	}
	return out
}

// endpointFindings: one endpoint taking everything while others exist,
// load skewed between endpoints, and endpoints ejected again and again.
func endpointFindings(s warmpool.Stats, cfg warmpool.Config) []Finding {
	var out []Finding
	for _, g := range endpointGroups(s) {
		n := len(g.keys)
		if n >= 2 && g.total >= int64(minRequests*n) {
			busiest, least := g.keys[0], g.keys[0]
			for _, k := range g.keys {
				if s.Hosts[k].Requests > s.Hosts[busiest].Requests {
					busiest = k
				}
				if s.Hosts[k].Requests < s.Hosts[least].Requests {
					least = k
				}
			}
			top := share(s.Hosts[busiest].Requests, g.total)
			low := share(s.Hosts[least].Requests, g.total)
			even := 1 / float64(n)
			switch {
			case top >= pinnedShare:
				fix := "set balancer: p2c (or round_robin) to spread requests over every address"
				if cfg.Balancer != "first" {
					fix = "the other endpoints fail or are ejected: see their findings and check those backends"
				}
				out = append(out, Finding{
					Rule: "endpoint-pinned", Severity: SeverityWarning, Host: busiest, Value: top,
					Message: fmt.Sprintf("%s took %s of the requests to %s while %d other endpoints exist (balancer %s)",
						busiest, pct(top), g.name, n-1, cfg.Balancer),
					Fix: fix,
				})
			case top > skewFactor*even:
				fix := "p2c sends fewer requests to an endpoint that answers slower or fails: check " + least
				if cfg.Balancer == "round_robin" {
					fix = "round_robin shares calls evenly, so one endpoint was added late or failed over to the others: check " + least
				} else if cfg.Balancer == "first" {
					fix = "set balancer: p2c (or round_robin) to spread requests over every address"
				}
				out = append(out, Finding{
					Rule: "endpoint-skew", Severity: SeverityWarning, Host: busiest, Value: top / even,
					Message: fmt.Sprintf("requests to %s are skewed: %s took %s, %.1f× an even share of %s, and %s only %s",
						g.name, busiest, pct(top), top/even, pct(even), least, pct(low)),
					Fix: fix,
				})
			}
		}
		for _, k := range g.keys {
			if e := s.Hosts[k].Ejections; e >= frequentEjects {
				out = append(out, Finding{
					Rule: "frequent-ejections", Severity: SeverityWarning, Host: k, Value: float64(e),
					Message: fmt.Sprintf("endpoint %s of %s was ejected %d times after %d failures in a row (connection failures or 5xx)",
						k, g.name, e, cfg.EjectAfterFailures),
					Fix: "check that backend: it keeps failing after each eject_duration; fix or remove it from the name",
				})
			}
		}
	}
	return out
}
