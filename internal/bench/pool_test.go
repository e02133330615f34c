package bench

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/warmpool/warmpool"
)

// fillOnes sets every number of v to 1, every string to "x" and every map
// to {"x": 1}, through nested structs.
func fillOnes(v reflect.Value) {
	switch v.Kind() {
	case reflect.Int64:
		v.SetInt(1)
	case reflect.Float64:
		v.SetFloat(1)
	case reflect.String:
		v.SetString("x")
	case reflect.Struct:
		for i := range v.NumField() {
			fillOnes(v.Field(i))
		}
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		e := reflect.New(v.Type().Elem()).Elem()
		fillOnes(e)
		m.SetMapIndex(reflect.ValueOf("x"), e)
		v.Set(m)
	}
}

// gauges are the HostStats figures a summary of slices takes from the last
// one (or, for the peak, the highest), not the sum.
var gauges = map[string]bool{"Open": true, "InUse": true, "Idle": true, "Dialing": true, "InFlight": true, "Waiting": true,
	"PeakInFlight": true, "LearnedIdleTimeout": true, "LatencyMin": true, "LatencyP50": true, "LatencyP95": true, "LatencyP99": true,
	"ConcurrencyLimit": true, "LimitWaiting": true}

// checkSum checks that every number of v, a sum of two values of ones, is 2,
// or 1 for a gauge.
func checkSum(t *testing.T, path string, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.Int64:
		want := int64(2)
		if gauges[path[1+len(pathParent(path)):]] {
			want = 1
		}
		if v.Int() != want {
			t.Errorf("%s: got %d, want %d", path, v.Int(), want)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			checkSum(t, path+"."+v.Type().Field(i).Name, v.Field(i))
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			checkSum(t, path+"["+k.String()+"]", v.MapIndex(k))
		}
	}
}

// pathParent is path up to its last ".".
func pathParent(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '.' {
			return path[:i]
		}
	}
	return ""
}

// TestSumStatsKnowsEveryField: summing two slices' Stats adds every counter
// of warmpool.Stats, HostStats and their tables, so a field added there is
// not silently dropped from the bench's pool summary.
func TestSumStatsKnowsEveryField(t *testing.T) {
	var one warmpool.Stats
	fillOnes(reflect.ValueOf(&one).Elem())
	checkSum(t, "Stats", reflect.ValueOf(sumStats(one, one)))
	// Stats embeds HostStats: both the total and the per-host entry.
	if got := sumStats(one, one).Hosts["x"].Created; got != 2 {
		t.Errorf("Hosts[x].Created: got %d, want 2", got)
	}
}

// onePool is the pool summary of a warmpool client that called one host,
// with h as its figures.
func onePool(h warmpool.HostStats) *PoolSummary {
	st := warmpool.Stats{HostStats: h, Hosts: map[string]warmpool.HostStats{"127.0.0.1:40001": h}}
	return &PoolSummary{Stats: st, ReuseRate: h.ReuseRate()}
}

// TestPoolSummaryJSONHasEveryTableEntry: a pool's JSON has a count of every
// close reason and dial failure kind of warmpool's tables, under its name.
func TestPoolSummaryJSONHasEveryTableEntry(t *testing.T) {
	b, err := json.Marshal(onePool(warmpool.HostStats{}))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		ClosedBy     map[string]int64 `json:"closed_by"`
		DialFailures map[string]int64 `json:"dial_failures"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, r := range warmpool.CloseReasonNames() {
		if _, ok := doc.ClosedBy[r]; !ok {
			t.Errorf("closed_by has no %s: %s", r, b)
		}
	}
	for _, k := range warmpool.DialFailureKinds() {
		if _, ok := doc.DialFailures[k]; !ok {
			t.Errorf("dial_failures has no %s: %s", k, b)
		}
	}
}

func TestPoolSummaryPlus(t *testing.T) {
	a := onePool(warmpool.HostStats{Created: 2, Open: 2, Requests: 10, Reused: 8})
	b := onePool(warmpool.HostStats{Created: 3, Open: 1, Requests: 30, Reused: 28})
	var none *PoolSummary
	if none.plus(b) != b || a.plus(nil) != nil {
		t.Error("plus with a nil summary: want the other")
	}
	s := a.plus(b)
	if s.Created != 5 || s.Open != 1 || s.Requests != 40 || s.ReuseRate != 36.0/40 || s.Hosts["127.0.0.1:40001"].Requests != 40 {
		t.Errorf("got %+v, want created 5, open 1 (the later), 40 requests, reuse rate 0.9, per host too", s)
	}
}
