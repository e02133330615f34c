package bench

import (
	"maps"
	"slices"
	"strconv"

	"github.com/warmpool/warmpool"
)

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
// TestErrorGroupsKnowEveryKind fails on a kind left out, which errorGroup
// would count as "other" unseen.
var errorGroups = map[string]string{
	"closed": "other", "status": "status", "content_type": "other", "pool_timeout": "timeout", "too_large": "other",
	"insecure_token": "other", "token": "other", "idle_race": "conn", "certificate": "other", "tls": "other",
	"dns": "conn", "refused": "conn", "canceled": "other", "timeout": "timeout", "reset": "conn", "other": "other",
}

// errorGroup is the coarse group of an error kind; "other" for a kind the
// table lacks.
func errorGroup(kind string) string {
	if g, ok := errorGroups[kind]; ok {
		return g
	}
	return "other"
}

// newErrorCounts sums the counts by kind into groups.
func newErrorCounts(byKind map[string]int64) ErrorCounts {
	c := ErrorCounts{ByKind: map[string]int64{}}
	for k, n := range byKind {
		if n == 0 {
			continue
		}
		c.ByKind[k] = n
		c.Total += n
		switch errorGroup(k) {
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

// kinds lists the kinds that occurred, most frequent first, then in
// warmpool.ErrorKinds order, as "2 reset, 1 timeout"; "-" for none.
func (c ErrorCounts) kinds() string {
	if c.Total == 0 {
		return "-"
	}
	order := warmpool.ErrorKinds()
	rank := func(k string) int {
		if i := slices.Index(order, k); i >= 0 {
			return i
		}
		return len(order)
	}
	ks := slices.SortedFunc(maps.Keys(c.ByKind), func(a, b string) int {
		if c.ByKind[a] != c.ByKind[b] {
			if c.ByKind[a] > c.ByKind[b] {
				return -1
			}
			return 1
		}
		return rank(a) - rank(b)
	})
	s := ""
	for i, k := range ks {
		if i > 0 {
			s += ", "
		}
		s += strconv.FormatInt(c.ByKind[k], 10) + " " + k
	}
	return s
}
