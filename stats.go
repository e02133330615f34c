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

	// Hedges counts hedged requests sent (see Config.HedgeAfter), and
	// HedgeWins those whose answer came first.
	Hedges    int64 `json:"hedges"`
	HedgeWins int64 `json:"hedge_wins"`

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
	InUse    int64 `json:"in_use"`    // connections serving at least one request: the stats line's "active", as httpx names them
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
	// closed a margin before it (see Config.DisableIdleLearning). In a total,
	// the shortest over hosts.
	LearnedIdleTimeout     time.Duration `json:"learned_idle_timeout_ns"`
	LearnedIdleTimeoutFrom string        `json:"learned_idle_timeout_from,omitempty"`

	// Latency of recent successful attempts (the last 15–30 s), to the end
	// of the body: the lowest, and percentiles (within 20 %); 0 before 20
	// of them. The concurrency limit, hedging and deadline checks read the
	// same figures. In a total, over all hosts.
	LatencyMin time.Duration `json:"latency_min_ns"`
	LatencyP50 time.Duration `json:"latency_p50_ns"`
	LatencyP95 time.Duration `json:"latency_p95_ns"`
	LatencyP99 time.Duration `json:"latency_p99_ns"`

	// ConcurrencyLimit is the limit on requests in flight now (see
	// Config.ConcurrencyLimit); 0 when there is none (in a total, the sum).
	// LimitWaiting counts requests queued at it now, LimitWaits those that
	// queued, and LimitWaitTime their total wait. Overloaded counts
	// requests it refused (ErrOverloaded), and Throttled those client-side
	// throttling refused (ErrOverloaded too).
	ConcurrencyLimit int64         `json:"concurrency_limit"`
	LimitWaiting     int64         `json:"limit_waiting"`
	LimitWaits       int64         `json:"limit_waits"`
	LimitWaitTime    time.Duration `json:"limit_wait_time_ns"`
	Overloaded       int64         `json:"overloaded"`
	Throttled        int64         `json:"throttled"`

	// CircuitState is the circuit breaker's state now: "closed", "open"
	// (calls fail at once with ErrCircuitOpen) or "half_open" (a probe may
	// go or is out); "" in a total. CircuitOpens counts the times it
	// opened, CircuitRejections the calls it failed at once.
	CircuitState      string `json:"circuit_state,omitempty"`
	CircuitOpens      int64  `json:"circuit_opens"`
	CircuitRejections int64  `json:"circuit_rejections"`
	// DeadlineRejections counts requests not sent because their context had
	// less time left than the fastest recent answer (LatencyMin) took.
	DeadlineRejections int64 `json:"deadline_rejections"`
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
	now := c.now()
	var all [numLatencyBuckets]int64
	var n int64
	for _, p := range c.pools.all() {
		hs := p.stats(now)
		s.Hosts[p.addr] = hs
		s.HostStats.add(hs)
		n += p.health.lat.counts(now, &all)
	}
	s.setLatency(&all, n)
	if c.hedge != nil {
		s.Hedges, s.HedgeWins = c.hedge.sent.Load(), c.hedge.wins.Load()
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

// setLatency sets the percentiles of s from the latency counts of its
// pools, which hold n latencies.
func (s *HostStats) setLatency(counts *[numLatencyBuckets]int64, n int64) {
	s.LatencyP50 = percentile(counts, n, 0.50)
	s.LatencyP95 = percentile(counts, n, 0.95)
	s.LatencyP99 = percentile(counts, n, 0.99)
}

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
	s.ConcurrencyLimit += o.ConcurrencyLimit
	s.LimitWaiting += o.LimitWaiting
	s.LimitWaits += o.LimitWaits
	s.LimitWaitTime += o.LimitWaitTime
	s.Overloaded += o.Overloaded
	s.Throttled += o.Throttled
	s.CircuitOpens += o.CircuitOpens
	s.CircuitRejections += o.CircuitRejections
	s.DeadlineRejections += o.DeadlineRejections
	if o.LatencyMin > 0 && (s.LatencyMin == 0 || o.LatencyMin < s.LatencyMin) {
		s.LatencyMin = o.LatencyMin
	}
	if o.LearnedIdleTimeout > 0 && (s.LearnedIdleTimeout == 0 || o.LearnedIdleTimeout < s.LearnedIdleTimeout) {
		s.LearnedIdleTimeout, s.LearnedIdleTimeoutFrom = o.LearnedIdleTimeout, o.LearnedIdleTimeoutFrom
	}
}
