package bench

// ErrorCounts counts failed requests: by kind, as warmpool.ErrorKind names
// them (the module's one classifier), and in four coarse groups, which the
// report has had since its first schema and keeps.
type ErrorCounts struct {
	Total int64 `json:"total"`
	// ByKind counts by warmpool.ErrorKind; only kinds that occurred appear.
	ByKind map[string]int64 `json:"by_kind"`
	// The groups, by errorGroups: timeout (timeout, pool_timeout), conn
	// (refused, reset, idle_race, dns), status (status) and other (every
	// other kind).
	Timeout int64 `json:"timeout"`
	Conn    int64 `json:"conn"`
	Status  int64 `json:"status"`
	Other   int64 `json:"other"`
}

// errorGroups maps every kind of warmpool.ErrorKinds to its coarse group.
// TestErrorGroupsKnowEveryKind fails on a kind left out, which ErrorGroup
// would count as "other" unseen.
var errorGroups = map[string]string{
	"closed": "other", "status": "status", "content_type": "other", "pool_timeout": "timeout", "too_large": "other",
	"overloaded": "other", "circuit_open": "other", // not sent: shed by the client (the scenarios count them apart)
	"insecure_token": "other", "token": "other", "idle_race": "conn", "certificate": "other", "tls": "other",
	"dns": "conn", "refused": "conn", "canceled": "other", "timeout": "timeout", "reset": "conn", "other": "other",
}

// ErrorGroup is the coarse group of an error kind, as ErrorCounts sums it:
// timeout, conn, status or other ("other" also for a kind the
// table lacks).
func ErrorGroup(kind string) string {
	if g, ok := errorGroups[kind]; ok {
		return g
	}
	return "other"
}

// NewErrorCounts counts failed requests from their counts by kind,
// summed into groups.
func NewErrorCounts(byKind map[string]int64) ErrorCounts {
	c := ErrorCounts{ByKind: map[string]int64{}}
	for k, n := range byKind {
		if n == 0 {
			continue
		}
		c.ByKind[k] = n
		c.Total += n
		switch ErrorGroup(k) {
		case "timeout":
			c.Timeout += n
		case "conn":
			c.Conn += n
		case "status":
			c.Status += n
		default:
			c.Other += n
		}
	}
	return c
}
