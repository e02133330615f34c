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
	Hosts map[string]HostStats

	// Calls counts calls made: Do, the JSON calls and requests through
	// HTTPClient, each once however many attempts it took. HostStats.Requests
	// counts attempts that got a connection.
	Calls       int64
	CallsFailed int64 // calls that ended in an error (not counting non-2xx answers)

	Retries            int64 // attempts after the first, across hosts
	BudgetRefusals     int64 // retries the retry budget refused
	TokenFetches       int64 // calls to the token source (through the cache)
	TokenFetchFailures int64
}

// HostStats are the pool figures for one dialed address, or the total.
type HostStats struct {
	// HostName is, for an endpoint of a balanced host name, that name; ""
	// for a dialed address and in a total. EndpointState is the endpoint's
	// state now: "active", "ejected", "draining" (gone from the resolver's
	// answer, requests in flight finishing) or "removed" (drained); "" when
	// not an endpoint. Ejections counts the times it was ejected.
	HostName      string
	EndpointState string
	Ejections     int64

	// Protocol is what the host's connections last negotiated: "HTTP/1.1",
	// "HTTP/2", or "" before the first connection (and in a total).
	Protocol string

	// Gauges.
	Open     int64 // connections open: in use + idle
	InUse    int64 // connections serving at least one request
	Idle     int64 // open connections serving none
	Dialing  int64 // connections being dialed
	InFlight int64 // requests between sending and their body being closed
	Waiting  int64 // requests waiting now for a connection (all max_connections busy)
	// PeakInFlight is the most requests ever in flight at once: the
	// concurrency the pool had to serve.
	PeakInFlight int64

	// Connection counters.
	Created int64 // connections opened
	// DialsAvoided counts dials net/http asked for that the HTTP/2 dial gate
	// held back and then dropped: the request got a connection another way.
	DialsAvoided int64
	Closed       int64        // connections closed, for any reason
	ClosedBy     CloseReasons // Closed by reason

	DialFailures     DialFailures  // failed attempts to open a connection, by kind
	DialTime         time.Duration // total TCP connect time of the connections Created
	TLSHandshakes    int64         // completed TLS handshakes
	TLSHandshakeTime time.Duration // their total duration

	// Request counters.
	Requests     int64 // requests done that had got a connection
	Reused       int64 // of those, served on a connection that had served before
	PoolTimeouts int64 // requests that gave up waiting for a connection (ErrPoolTimeout)
	// Waits counts requests that found max_connections requests in flight
	// to their host and so waited for a connection; WaitTime is the total
	// time they waited.
	Waits    int64
	WaitTime time.Duration

	// Failures counts attempts that ended in an error (no answer), and
	// FailuresByKind the same by ErrorKind ("idle_race", "refused",
	// "reset", "timeout", "pool_timeout", …); nil when there were none.
	Failures       int64
	FailuresByKind map[string]int64

	// LearnedIdleTimeout is the server's idle timeout as warmpool learned
	// it (0: none learned, or learning is off), and LearnedIdleTimeoutFrom
	// how: "keep-alive header" or "server close". Idle connections are
	// closed a margin before it (see Config.LearnIdleTimeout). In a total,
	// the shortest over hosts.
	LearnedIdleTimeout     time.Duration
	LearnedIdleTimeoutFrom string
}

// DialFailures counts failed connection attempts by kind.
type DialFailures struct {
	Refused int64 // connection refused or reset while connecting
	Timeout int64 // connect or TLS handshake timed out
	DNS     int64 // name resolution failed
	TLS     int64 // TLS handshake failed (including certificate errors)
	Other   int64
}

// Total is the sum over all kinds.
func (d DialFailures) Total() int64 { return d.Refused + d.Timeout + d.DNS + d.TLS + d.Other }

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
		Protocol:     protoNames[h.proto.Load()],
		Dialing:      h.dialing.Load(),
		InFlight:     h.inflight.Load(),
		Created:      h.created.Load(),
		DialsAvoided: h.dialsAvoided.Load(),
		Reused:       h.reused.Load(), // before requests: see gotConn
		Requests:     h.requests.Load(),
		PeakInFlight: h.peakEver.Load(),
		PoolTimeouts: h.poolTimeouts.Load(),
		Waiting:      h.waiting.Load(),
		Waits:        h.waits.Load(),
		WaitTime:     time.Duration(h.waitNanos.Load()),
		DialFailures: DialFailures{
			Refused: h.dialFail[dialRefused].Load(),
			Timeout: h.dialFail[dialTimeout].Load(),
			DNS:     h.dialFail[dialDNS].Load(),
			TLS:     h.dialFail[dialTLS].Load(),
			Other:   h.dialFail[dialOther].Load(),
		},
		DialTime:         time.Duration(h.dialNanos.Load()),
		TLSHandshakes:    h.tlsHandshakes.Load(),
		TLSHandshakeTime: time.Duration(h.tlsNanos.Load()),
	}
	if ep := h.ep.Load(); ep != nil {
		s.HostName = h.name
		s.EndpointState = ep.state(h.d.now())
		s.Ejections = ep.ejections.Load()
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
	d, e := &s.DialFailures, o.DialFailures
	d.Refused += e.Refused
	d.Timeout += e.Timeout
	d.DNS += e.DNS
	d.TLS += e.TLS
	d.Other += e.Other
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
