package warmpool

import (
	"maps"
	"slices"
)

// Stats is a snapshot of the client's pool, in the spirit of
// database/sql.DBStats: gauges describe now, counters only grow. Totals are
// the sum over Hosts.
type Stats struct {
	HostStats
	// Hosts holds the same figures per dialed address ("host:port").
	Hosts map[string]HostStats
}

// HostStats are the pool figures for one dialed address, or the total.
type HostStats struct {
	// Gauges.
	Open     int64 // connections open: in use + idle
	InUse    int64 // connections serving at least one request
	Idle     int64 // open connections serving none
	Dialing  int64 // connections being dialed
	InFlight int64 // requests between sending and their body being closed

	// Connection counters.
	Created  int64        // connections opened
	Closed   int64        // connections closed, for any reason
	ClosedBy CloseReasons // Closed by reason

	// Request counters.
	Requests     int64 // requests that got a connection
	Reused       int64 // of those, served on a connection that had served before
	PoolTimeouts int64 // requests that gave up waiting for a connection (ErrPoolTimeout)
}

// CloseReasons counts closed connections by why they closed.
type CloseReasons struct {
	IdleExpiry int64 // idle for keepalive_expiry
	MaxAge     int64 // retired by max_connection_age
	Server     int64 // the server closed it
	Error      int64 // a read or write failed
	Client     int64 // Close or Shutdown
	Trim       int64 // idle beyond what recent demand needed
	Other      int64 // closed by net/http otherwise (Connection: close, a body not read to the end)
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
	return s
}

// HostNames returns the dialed addresses in s, sorted.
func (s Stats) HostNames() []string { return slices.Sorted(maps.Keys(s.Hosts)) }

func (h *hostPool) stats() HostStats {
	s := HostStats{
		Dialing:      h.dialing.Load(),
		InFlight:     h.inflight.Load(),
		Created:      h.created.Load(),
		Requests:     h.requests.Load(),
		Reused:       h.reused.Load(),
		PoolTimeouts: h.poolTimeouts.Load(),
	}
	h.mu.Lock()
	for c := range h.conns {
		s.Open++
		if c.inUse.Load() > 0 {
			s.InUse++
		}
	}
	h.mu.Unlock()
	s.Idle = s.Open - s.InUse
	r := &s.ClosedBy
	for i, p := range []*int64{nil, &r.IdleExpiry, &r.MaxAge, &r.Server, &r.Error, &r.Client, &r.Trim, &r.Other} {
		n := h.closed[i].Load()
		s.Closed += n
		if p != nil {
			*p += n
		} else {
			r.Other += n
		}
	}
	return s
}

func (s *HostStats) add(o HostStats) {
	s.Open += o.Open
	s.InUse += o.InUse
	s.Idle += o.Idle
	s.Dialing += o.Dialing
	s.InFlight += o.InFlight
	s.Created += o.Created
	s.Closed += o.Closed
	s.Requests += o.Requests
	s.Reused += o.Reused
	s.PoolTimeouts += o.PoolTimeouts
	a, b := &s.ClosedBy, o.ClosedBy
	a.IdleExpiry += b.IdleExpiry
	a.MaxAge += b.MaxAge
	a.Server += b.Server
	a.Error += b.Error
	a.Client += b.Client
	a.Trim += b.Trim
	a.Other += b.Other
}
