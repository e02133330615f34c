package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/warmpool/warmpool/internal/bench"
)

// withModes is r with only the named modes' runs, their ratios and
// verdicts computed afresh.
func withModes(r *bench.Report, modes ...string) *bench.Report {
	for i := range r.Protos {
		p := &r.Protos[i]
		p.Modes = slices.DeleteFunc(p.Modes, func(m bench.ModeResult) bool { return !slices.Contains(modes, m.Mode) })
		p.Skipped = slices.DeleteFunc(p.Skipped, func(s bench.Skipped) bool { return !slices.Contains(modes, s.Mode) })
	}
	Finish(r)
	return r
}

// verdictCases are the reports the verdict golden file covers: every way a
// verdict can go.
func verdictCases() []struct {
	name string
	r    *bench.Report
} {
	allFailed := withModes(syntheticReport(), bench.ModePerRequest, bench.ModeWarmpool)
	allFailed.Settings.Target = "http://127.0.0.1:40009/answer"
	for i := range allFailed.Protos {
		for j := range allFailed.Protos[i].Modes {
			m := &allFailed.Protos[i].Modes[j]
			*m = bench.ModeResult{Mode: m.Mode, Requests: 500, Errors: bench.NewErrorCounts(map[string]int64{"status": 500}),
				StatusCodes: map[string]int64{"401": 500}, ErrorSamples: []string{"status: warmpool: POST http://127.0.0.1:40009/answer: status 401 Unauthorized"}}
		}
	}
	Finish(allFailed)

	someErrors := syntheticReport()
	wp := &someErrors.Protos[1].Modes[3]
	wp.Errors = bench.NewErrorCounts(map[string]int64{"idle_race": 4, "reset": 1})
	wp.Requests += 5
	Finish(someErrors)

	partial := withModes(syntheticReport(), bench.ModePerRequest, bench.ModeDefault, bench.ModeTuned, bench.ModeWarmpool)
	partial.Protos = partial.Protos[:1]
	partial.Partial, partial.PartialReason = true, "interrupted after 4 of 8 runs"
	Finish(partial)

	early := withModes(syntheticReport(), bench.ModePerRequest, bench.ModeDefault, bench.ModeTuned, bench.ModeWarmpool)
	early.Protos = early.Protos[:1]
	early.Protos[0].Modes = early.Protos[0].Modes[:2]
	early.Partial, early.PartialReason = true, "interrupted after 2 of 8 runs"
	Finish(early)

	noUnknownConns := syntheticReport()
	for i := range noUnknownConns.Protos {
		for j := range noUnknownConns.Protos[i].Modes {
			noUnknownConns.Protos[i].Modes[j].ServerAccepted = nil
		}
	}
	Finish(noUnknownConns)

	return []struct {
		name string
		r    *bench.Report
	}{
		{"every mode", syntheticReport()},
		{"without per-request: against default", withModes(syntheticReport(), bench.ModeDefault, bench.ModeTuned, bench.ModeWarmpool, bench.ModeWarmpoolH2)},
		{"warmpool alone", withModes(syntheticReport(), bench.ModeWarmpool, bench.ModeWarmpoolH2)},
		{"warmpool and tuned", withModes(syntheticReport(), bench.ModeTuned, bench.ModeWarmpool)},
		{"no warmpool mode", withModes(syntheticReport(), bench.ModePerRequest, bench.ModeTuned)},
		{"some warmpool requests failed", someErrors},
		{"every request 401 from a URL", allFailed},
		{"connection counts unknown (external server without /stats)", noUnknownConns},
		{"interrupted after warmpool's first run", partial},
		{"interrupted before warmpool ran", early},
	}
}

func TestVerdictGolden(t *testing.T) {
	var b bytes.Buffer
	for _, c := range verdictCases() {
		fmt.Fprintf(&b, "== %s\n", c.name)
		if err := WriteVerdict(&b, c.r); err != nil {
			t.Fatal(err)
		}
	}
	golden(t, "verdict.golden", b.Bytes())
}

func TestVerdictIsLast(t *testing.T) {
	// The verdict ends the text report, after the notes and the legend.
	for _, c := range verdictCases() {
		var text, verdict bytes.Buffer
		if err := WriteText(&text, c.r); err != nil {
			t.Fatal(err)
		}
		WriteVerdict(&verdict, c.r)
		if !bytes.HasSuffix(text.Bytes(), verdict.Bytes()) || !strings.HasPrefix(lastLine(text.String()), "verdict") {
			t.Errorf("%s: the text report does not end with the verdicts:\n%s", c.name, text.String())
		}
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func TestVerdictFollowsFigures(t *testing.T) {
	// Change the figures: the verdict changes with them.
	r := withModes(syntheticReport(), bench.ModePerRequest, bench.ModeWarmpool)
	r.Protos = r.Protos[:1]
	r.Protos[0].Modes[1].ReqPerS = 8000 // warmpool: 2× per-request's 4,000
	r.Protos[0].Modes[1].Latency.P50 = 700
	acc := int64(5)
	r.Protos[0].Modes[1].ServerAccepted = &acc
	Finish(r)
	want := "verdict (http): warmpool made 2.00× the per-request pattern's throughput at 1/10 of its median latency, on 5 connections instead of 12,000."
	if r.Protos[0].Verdict != want {
		t.Errorf("got  %q\nwant %q", r.Protos[0].Verdict, want)
	}
}

func TestHint401(t *testing.T) {
	for _, c := range verdictCases() {
		if c.name != "every request 401 from a URL" {
			continue
		}
		var text bytes.Buffer
		WriteText(&text, c.r)
		for _, want := range []string{"401 Unauthorized", "-token T", "$WARMPOOL_TOKEN", "-token-mode"} {
			if !strings.Contains(text.String(), want) {
				t.Errorf("the report lacks %q:\n%s", want, text.String())
			}
		}
		return
	}
	t.Fatal("no 401 case")
}

// TestDefinitionsCoverEveryField walks the JSON of reports that fill in
// every optional object and fails on a field without a definition.
func TestDefinitionsCoverEveryField(t *testing.T) {
	reports := []*bench.Report{syntheticReport(), syntheticTokenReport(bench.TokenPerRequest)}
	seen := map[string]bool{}
	for _, r := range reports {
		var b bytes.Buffer
		if err := WriteJSON(&b, r); err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		for _, key := range DefinitionKeys(doc) {
			seen[key] = true
			if _, ok := definitions[key]; !ok {
				t.Errorf("field %q has no definition", key)
			}
		}
	}
	// Every definition is of a field: none is left from a renamed one.
	for key := range definitions {
		if !seen[key] {
			t.Errorf("definition %q matches no field", key)
		}
	}
}
