package warmpool

import (
	"sync/atomic"
	"time"
)

// signals are what a pool's attempts tell of its server: how long they take
// and whether they fail. They are measured once, here, at the end of each
// attempt (latency to the end of the response body), and read by every
// policy that needs them: the balancer (latency), ejection (failures in a
// row).
type signals struct {
	ewma  atomic.Int64 // latency, nanos, moving average
	fails atomic.Int32 // failures in a row: connection failures and 5xx answers
}

// observe folds one attempt into the signals: took is its latency, failed
// whether it failed in a way that says the server is unwell. It returns the
// failures in a row, counting this one.
func (s *signals) observe(took time.Duration, failed bool) int32 {
	if failed {
		return s.fails.Add(1)
	}
	s.noteLatency(took)
	if s.fails.Load() != 0 {
		s.fails.Store(0)
	}
	return 0
}

// noteLatency folds one latency into the moving average (weight 1/8 for
// the new sample). Updates racing each other may lose one; the average does
// not need them all.
func (s *signals) noteLatency(d time.Duration) {
	old := s.ewma.Load()
	if old == 0 {
		s.ewma.Store(int64(d))
		return
	}
	s.ewma.Store(old + (int64(d)-old)/8)
}

// latency is the moving average of the latency; 0 before any success.
func (s *signals) latency() time.Duration { return time.Duration(s.ewma.Load()) }

// serverFault reports whether an attempt's error says something of the
// server's health: not the client's own limits, the caller's
// cancellation or the token source.
func serverFault(err error) bool {
	switch ErrorKind(err) {
	case "pool_timeout", "too_large", "closed", "canceled", "token", "insecure_token":
		return false
	}
	return true
}
