package report

import (
	"bytes"
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"testing"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/doctor"
	"github.com/warmpool/warmpool/internal/bench"
)

// TestReportKnowsEveryTableEntry: the JSON report has a field, and a
// definition with a meaning of its own, for every close reason and dial
// failure kind of warmpool's tables, and its definitions name every error
// kind and every rule of the doctor.
func TestReportKnowsEveryTableEntry(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, syntheticReport()); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Protos []struct {
			Modes []struct {
				Pool *struct {
					ClosedBy     map[string]int64 `json:"closed_by"`
					DialFailures map[string]int64 `json:"dial_failures"`
				} `json:"pool"`
			} `json:"modes"`
		} `json:"protos"`
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	pool := doc.Protos[0].Modes[3].Pool
	for _, tc := range []struct {
		field    string
		names    []string
		got      map[string]int64
		meanings map[string]string
	}{
		{"closed_by", warmpool.CloseReasonNames(), pool.ClosedBy, closeReasonMeanings},
		{"dial_failures", warmpool.DialFailureKinds(), pool.DialFailures, dialKindMeanings},
	} {
		for _, name := range tc.names {
			if _, ok := tc.got[name]; !ok {
				t.Errorf("pool.%s has no %s: %v", tc.field, name, tc.got)
			}
			if tc.meanings[name] == "" || definitions[tc.field+"."+name] != tc.meanings[name] {
				t.Errorf("%s.%s: no meaning of its own (definition %q)", tc.field, name, definitions[tc.field+"."+name])
			}
		}
		if got, want := slices.Sorted(maps.Keys(tc.meanings)), slices.Sorted(slices.Values(tc.names)); !slices.Equal(got, want) {
			t.Errorf("meanings of %s for %v, want exactly %v", tc.field, got, want)
		}
	}
	names := func(key, name string) bool { // as a word: "timeout" is not in "pool_timeout"
		return regexp.MustCompile(`(^|[^\w-])` + regexp.QuoteMeta(name) + `($|[^\w-])`).MatchString(definitions[key])
	}
	for _, k := range warmpool.ErrorKinds() {
		if !names("errors.by_kind", k) {
			t.Errorf("errors.by_kind does not name %s: %q", k, definitions["errors.by_kind"])
		}
		if g := "errors." + bench.ErrorGroup(k); !names(g, k) {
			t.Errorf("%s does not name %s: %q", g, k, definitions[g])
		}
	}
	for _, rule := range doctor.Rules() {
		if !names("findings.rule", rule) {
			t.Errorf("findings.rule does not name %s: %q", rule, definitions["findings.rule"])
		}
	}
}
