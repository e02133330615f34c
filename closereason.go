package warmpool

import "iter"

// closeReason is why a connection closed. This file is the one table of
// close reasons: the connection wrapper records them, Stats counts them,
// Hooks, logs, the Prometheus and OpenTelemetry packages and the doctor
// name them through CloseReasons.All.
type closeReason int32

const (
	closeUnknown     closeReason = iota // not yet known; counted as "other"
	closeIdleExpiry                     // idle past keepalive_expiry (closed by net/http)
	closeMaxAge                         // retired after max_connection_age
	closeServer                         // the server closed it (FIN or RST seen while idle, or EOF)
	closeError                          // a read or write failed mid-exchange
	closeClient                         // Close or Shutdown of the client
	closeTrim                           // idle above what demand needs
	closeOther                          // closed by net/http otherwise (Connection: close, unread body…)
	closeUnused                         // closed without ever serving a request (a surplus dial)
	closeLearnedIdle                    // idle close to the server's learned idle timeout: closed first
	numCloseReasons
)

// closeReasonNames are the reasons as Hooks, logs and metrics name them.
var closeReasonNames = [numCloseReasons]string{
	closeUnknown:     "other",
	closeIdleExpiry:  "idle_expiry",
	closeMaxAge:      "max_age",
	closeServer:      "server",
	closeError:       "error",
	closeClient:      "client",
	closeTrim:        "trim",
	closeOther:       "other",
	closeUnused:      "unused",
	closeLearnedIdle: "learned_idle",
}

func (r closeReason) String() string { return closeReasonNames[r] }

// CloseReasons counts closed connections by why they closed.
type CloseReasons struct {
	IdleExpiry int64 `json:"idle_expiry"` // idle for keepalive_expiry
	MaxAge     int64 `json:"max_age"`     // retired by max_connection_age
	Server     int64 `json:"server"`      // the server closed it: FIN or RST while idle, or EOF
	Error      int64 `json:"error"`       // a read or write failed mid-exchange
	Client     int64 `json:"client"`      // Close or Shutdown
	Trim       int64 `json:"trim"`        // idle beyond what recent demand needed
	Other      int64 `json:"other"`       // closed by net/http otherwise (Connection: close, a body not read to the end)
	Unused     int64 `json:"unused"`      // closed without ever serving a request (a dial that lost the race to a free connection)
	// LearnedIdle counts idle connections closed by warmpool just before
	// the server's learned idle timeout would have closed them (see
	// HostStats.LearnedIdleTimeout), so no request was sent on them.
	LearnedIdle int64 `json:"learned_idle"`
}

// field returns the counter of r in rs; closeUnknown counts as Other.
func (rs *CloseReasons) field(r closeReason) *int64 {
	switch r {
	case closeIdleExpiry:
		return &rs.IdleExpiry
	case closeMaxAge:
		return &rs.MaxAge
	case closeServer:
		return &rs.Server
	case closeError:
		return &rs.Error
	case closeClient:
		return &rs.Client
	case closeTrim:
		return &rs.Trim
	case closeUnused:
		return &rs.Unused
	case closeLearnedIdle:
		return &rs.LearnedIdle
	}
	return &rs.Other
}

// All yields each close reason by its name ("idle_expiry", "max_age",
// "server", "error", "client", "trim", "other", "unused", "learned_idle")
// with its count, in that order, every reason once.
func (rs CloseReasons) All() iter.Seq2[string, int64] {
	return func(yield func(string, int64) bool) {
		for r := closeIdleExpiry; r < numCloseReasons; r++ {
			if !yield(r.String(), *rs.field(r)) {
				return
			}
		}
	}
}

// Total is the sum over all reasons.
func (rs CloseReasons) Total() int64 {
	var n int64
	for _, v := range rs.All() {
		n += v
	}
	return n
}

// CloseReasonNames lists the names All yields, in its order.
func CloseReasonNames() []string {
	names := make([]string, 0, numCloseReasons-1)
	for r := closeIdleExpiry; r < numCloseReasons; r++ {
		names = append(names, r.String())
	}
	return names
}

func (rs *CloseReasons) add(o CloseReasons) {
	for r := closeIdleExpiry; r < numCloseReasons; r++ {
		*rs.field(r) += *o.field(r)
	}
}
