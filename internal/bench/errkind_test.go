package bench

import (
	"slices"
	"testing"

	"github.com/warmpool/warmpool"
)

func TestErrorCounts(t *testing.T) {
	got := NewErrorCounts(map[string]int64{"timeout": 1, "pool_timeout": 2, "refused": 3, "reset": 4, "idle_race": 5,
		"status": 6, "certificate": 7, "other": 8, "canceled": 0})
	if got.Total != 36 || got.Timeout != 3 || got.Conn != 12 || got.Status != 6 || got.Other != 15 {
		t.Errorf("got %+v, want total 36: timeout 3, conn 12, status 6, other 15", got)
	}
	if _, ok := got.ByKind["canceled"]; ok || len(got.ByKind) != 8 {
		t.Errorf("by kind: got %v, want the 8 kinds that occurred", got.ByKind)
	}
	if got := NewErrorCounts(nil); got.Total != 0 || got.ByKind == nil {
		t.Errorf("no errors: got %+v, want zeros and an empty map", got)
	}
}

func TestErrorGroupsKnowEveryKind(t *testing.T) {
	// Every kind warmpool.ErrorKind returns has its group, and every group's
	// kind is one: a new kind would silently fall into "other", a renamed
	// one leave a stale entry.
	known := warmpool.ErrorKinds()
	for _, k := range known {
		if _, ok := errorGroups[k]; !ok {
			t.Errorf("errorGroups has no group for %q", k)
		}
		if c := NewErrorCounts(map[string]int64{k: 1}); c.ByKind[k] != 1 || c.Total != 1 || c.Timeout+c.Conn+c.Status+c.Other != 1 {
			t.Errorf("%s: counts %+v, want it counted once, under its name and in one group", k, c)
		}
	}
	for k := range errorGroups {
		if !slices.Contains(known, k) {
			t.Errorf("errorGroups has %q, which warmpool.ErrorKind never returns", k)
		}
	}
}
