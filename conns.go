package warmpool

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// connSet is a pool's open connections, and how many it opened and closed.
type connSet struct {
	mu      sync.Mutex
	m       map[*conn]struct{} // guarded by mu
	open    atomic.Int64
	created atomic.Int64
	closed  [numCloseReasons]atomic.Int64
}

func (s *connSet) add(c *conn) {
	s.mu.Lock()
	s.m[c] = struct{}{}
	s.mu.Unlock()
	s.open.Add(1)
	s.created.Add(1)
}

func (s *connSet) remove(c *conn, r closeReason) {
	s.mu.Lock()
	delete(s.m, c)
	s.mu.Unlock()
	s.open.Add(-1)
	s.closed[r].Add(1)
}

// list returns the open connections.
func (s *connSet) list() []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	conns := make([]*conn, 0, len(s.m))
	for c := range s.m {
		conns = append(conns, c)
	}
	return conns
}

// counts returns how many connections are open, and of those in use.
func (s *connSet) counts() (open, inUse int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.m {
		open++
		if c.inUse.Load() > 0 { // retired connections hold a negative count
			inUse++
		}
	}
	return open, inUse
}

// closedBy returns how many closed, in all and by reason.
func (s *connSet) closedBy() (total int64, by CloseReasons) {
	for r := closeUnknown; r < numCloseReasons; r++ {
		n := s.closed[r].Load()
		total += n
		*by.field(r) += n
	}
	return total, by
}

// storeMax raises v to n if n is larger.
func storeMax(v *atomic.Int64, n int64) {
	for p := v.Load(); n > p && !v.CompareAndSwap(p, n); p = v.Load() {
	}
}

// trimIdle closes idle connections beyond allowed, longest idle first.
func (s *connSet) trimIdle(allowed int64) {
	var idle []*conn
	for _, c := range s.list() {
		if c.inUse.Load() == 0 {
			idle = append(idle, c)
		}
	}
	excess := int64(len(idle)) - allowed
	if excess <= 0 {
		return
	}
	slices.SortFunc(idle, func(a, b *conn) int { return cmp.Compare(a.idleSince.Load(), b.idleSince.Load()) })
	for _, c := range idle[:excess] {
		if c.claim() {
			c.closeWith(closeTrim)
		}
	}
}

// retireIdle closes the idle connections past max_connection_age. A
// connection is claimed by moving inUse from 0 to a large negative value, so
// an attempt that picks it at the same moment sees it closed before writing
// and net/http retries that attempt on another connection.
func (s *connSet) retireIdle(now time.Time) {
	ns := now.UnixNano()
	for _, c := range s.list() {
		if c.retireAt != 0 && ns >= c.retireAt && c.claim() {
			c.closeWith(closeMaxAge)
		}
	}
}

// closeAll closes every open connection, idle or not.
func (s *connSet) closeAll(reason closeReason) {
	for _, c := range s.list() {
		c.closeWith(reason)
	}
}
