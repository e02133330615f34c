package warmpool

import (
	"maps"
	"slices"
	"time"
)

// Stats is a snapshot of the client's pool, in the spirit of
// database/sql.DBStats: gauges describe now, counters only grow. Totals are
// the sum over Hosts.
type Stats struct {
	HostStats
	// Hosts holds the same figures per dialed address ("host:port"). A
	// host name whose requests are spread over its addresses (see
	// Config.Balancer) has one entry per endpoint instead, keyed by the
	// endpoint's address ("ip:port"; "ip:port@name" if another name, or a
	// URL with that IP, uses the same address), with HostName naming it.
	Hosts map[string]HostStats `json:"hosts"`

	// Calls counts calls made: Do, the JSON calls and requests through
	// HTTPClient, each once however many attempts it took. HostStats.Requests
	// counts attempts that got a connection.
	Calls       int64 `json:"calls"`
	CallsFailed int64 `json:"calls_failed"` // calls that ended in an error (not counting non-2xx answers)

	Retries            int64 `json:"retries"`         // attempts after the first, across hosts
	BudgetRefusals     int64 `json:"budget_refusals"` // retries the retry budget refused
	TokenFetches       int64 `json:"token_fetches"`   // calls to the token source (through the cache)
	TokenFetchFailures int64 `json:"token_fetch_failures"`
}

// HostStats are the pool figures for one dialed address, or the total.
type HostStats struct {
	// HostName is, for an endpoint of a balanced host name, that name; ""
	// for a dialed address and in a total. EndpointState is the endpoint's
	// state now: "active", "ejected", "draining" (gone from the resolver's
	// answer, requests in flight finishing) or "removed" (drained); "" when
	// not an endpoint. Ejections counts the times it was ejected.
	HostName      string `json:"host_name,omitempty"`
	EndpointState string `json:"endpoint_state,omitempty"`
	Ejections     int64  `json:"ejections"`

	// Protocol is what the host's connections last negotiated: "HTTP/1.1",
	// "HTTP/2", or "" before the first connection (and in a total).
	Protocol string `json:"protocol,omitempty"`

	// Gauges.
	Open     int64 `json:"open"`      // connections open: in use + idle
	InUse    int64 `json:"in_use"`    // connections serving at least one request
	Idle     int64 `json:"idle"`      // open connections serving none
	Dialing  int64 `json:"dialing"`   // connections being dialed
	InFlight int64 `json:"in_flight"` // requests between sending and their body being closed
	Waiting  int64 `json:"waiting"`   // requests waiting now for a connection (all max_connections busy)
	// PeakInFlight is the most requests ever in flight at once: the
	// concurrency the pool had to serve.
	PeakInFlight int64 `json:"peak_in_flight"`

	// Connection counters.
	Created int64 `json:"created"` // connections opened
	// DialsAvoided counts dials net/http asked for that the HTTP/2 dial gate
	// held back and then dropped: the request got a connection another way.
	DialsAvoided int64        `json:"dials_avoided"`
	Closed       int64        `json:"closed"`    // connections closed, for any reason
	ClosedBy     CloseReasons `json:"closed_by"` // Closed by reason

	DialFailures     DialFailures  `json:"dial_failures"`         // failed attempts to open a connection, by kind
	DialTime         time.Duration `json:"dial_time_ns"`          // total TCP connect time of the connections Created
	TLSHandshakes    int64         `json:"tls_handshakes"`        // completed TLS handshakes
	TLSHandshakeTime time.Duration `json:"tls_handshake_time_ns"` // their total duration

	// Request counters.
	Requests     int64 `json:"requests"`      // requests done that had got a connection
	Reused       int64 `json:"reused"`        // of those, served on a connection that had served before
	PoolTimeouts int64 `json:"pool_timeouts"` // requests that gave up waiting for a connection (ErrPoolTimeout)
	// Waits counts requests that found max_connections requests in flight
	// to their host and so waited for a connection; WaitTime is the total
	// time they waited.
	Waits    int64         `json:"waits"`
	WaitTime time.Duration `json:"wait_time_ns"`

	// Failures counts attempts that ended in an error (no answer), and
	// FailuresByKind the same by ErrorKind ("idle_race", "refused",
	// "reset", "timeout", "pool_timeout", …); nil when there were none.
	Failures       int64            `json:"failures"`
	FailuresByKind map[string]int64 `json:"failures_by_kind,omitempty"`

	// LearnedIdleTimeout is the server's idle timeout as warmpool learned
	// it (0: none learned, or learning is off), and LearnedIdleTimeoutFrom
	// how: "keep-alive header" or "server close". Idle connections are
	// closed a margin before it (see Config.LearnIdleTimeout). In a total,
	// the shortest over hosts.
	LearnedIdleTimeout     time.Duration `json:"learned_idle_timeout_ns"`
	LearnedIdleTimeoutFrom string        `json:"learned_idle_timeout_from,omitempty"`
}

// ReuseRate is the share of requests served on an already used connection,
// from 0 to 1; 0 when no request was made.
func (s HostStats) ReuseRate() float64 {
	if s.Requests == 0 {
		return 0
	}
	return float64(s.Reused) / float64(s.Requests)
}

// Stats returns a snapshot of the pool. It takes no lock that the request
// path takes, except briefly each host's connection list to count idle ones.
func (c *Client) Stats() Stats {
	s := Stats{Hosts: make(map[string]HostStats)}
	for _, h := range c.dialer.hostList() {
		hs := h.stats()
		s.Hosts[h.addr] = hs
		s.HostStats.add(hs)
	}
	s.Retries = c.budget.retries.Load()
	s.BudgetRefusals = c.budget.refused.Load()
	if c.tokens != nil {
		s.TokenFetches, s.TokenFetchFailures = c.tokens.fetchStats()
	}
	s.Calls = c.calls.Load()
	s.CallsFailed = c.callsFailed.Load()
	return s
}

// HostNames returns the dialed addresses in s, sorted.
func (s Stats) HostNames() []string { return slices.Sorted(maps.Keys(s.Hosts)) }

func (h *hostPool) stats() HostStats {
	s := HostStats{
		Protocol:         protoNames[h.proto.Load()],
		Dialing:          h.dialing.Load(),
		InFlight:         h.inflight.Load(),
		Created:          h.created.Load(),
		DialsAvoided:     h.dialsAvoided.Load(),
		Reused:           h.reused.Load(), // before requests: see gotConn
		Requests:         h.requests.Load(),
		PeakInFlight:     h.peakEver.Load(),
		PoolTimeouts:     h.poolTimeouts.Load(),
		Waiting:          h.waiting.Load(),
		Waits:            h.waits.Load(),
		WaitTime:         time.Duration(h.waitNanos.Load()),
		DialTime:         time.Duration(h.dialNanos.Load()),
		TLSHandshakes:    h.tlsHandshakes.Load(),
		TLSHandshakeTime: time.Duration(h.tlsNanos.Load()),
	}
	if ep := h.ep.Load(); ep != nil {
		s.HostName = h.name
		s.EndpointState = ep.state(h.d.now())
		s.Ejections = ep.ejections.Load()
	}
	for k := range dialKinds {
		*s.DialFailures.field(k) = h.dialFail[k].Load()
	}
	h.mu.Lock()
	for c := range h.conns {
		s.Open++
		if c.inUse.Load() > 0 { // retired connections hold a negative count
			s.InUse++
		}
	}
	h.mu.Unlock()
	s.Idle = s.Open - s.InUse
	for r := closeUnknown; r < closeReasons; r++ {
		n := h.closed[r].Load()
		s.Closed += n
		*s.ClosedBy.field(r) += n
	}
	for i := range h.failures {
		if n := h.failures[i].Load(); n > 0 {
			if s.FailuresByKind == nil {
				s.FailuresByKind = make(map[string]int64)
			}
			s.FailuresByKind[errorKinds[i]] = n
			s.Failures += n
		}
	}
	if d := time.Duration(h.idle.nanos.Load()); d > 0 {
		s.LearnedIdleTimeout = d
		s.LearnedIdleTimeoutFrom = idleSourceNames[h.idle.source.Load()]
	}
	return s
}

var protoNames = [...]string{protoUnknown: "", protoHTTP1: "HTTP/1.1", protoHTTP2: "HTTP/2"}

func (s *HostStats) add(o HostStats) {
	s.Open += o.Open
	s.InUse += o.InUse
	s.Idle += o.Idle
	s.Dialing += o.Dialing
	s.InFlight += o.InFlight
	s.PeakInFlight += o.PeakInFlight
	s.Created += o.Created
	s.DialsAvoided += o.DialsAvoided
	s.Closed += o.Closed
	s.Ejections += o.Ejections
	s.Requests += o.Requests
	s.Reused += o.Reused
	s.PoolTimeouts += o.PoolTimeouts
	s.Waiting += o.Waiting
	s.Waits += o.Waits
	s.WaitTime += o.WaitTime
	s.TLSHandshakes += o.TLSHandshakes
	s.DialTime += o.DialTime
	s.TLSHandshakeTime += o.TLSHandshakeTime
	s.DialFailures.add(o.DialFailures)
	s.ClosedBy.add(o.ClosedBy)
	s.Failures += o.Failures
	for k, n := range o.FailuresByKind {
		if s.FailuresByKind == nil {
			s.FailuresByKind = make(map[string]int64)
		}
		s.FailuresByKind[k] += n
	}
	if o.LearnedIdleTimeout > 0 && (s.LearnedIdleTimeout == 0 || o.LearnedIdleTimeout < s.LearnedIdleTimeout) {
		s.LearnedIdleTimeout, s.LearnedIdleTimeoutFrom = o.LearnedIdleTimeout, o.LearnedIdleTimeoutFrom
	}
}
