package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/warmpool/warmpool/internal/bench"
)

func TestBenchScenarioUsageErrors(t *testing.T) {
	// None of these runs anything: each fails while parsing.
	tests := []struct {
		name string
		args []string
	}{
		{"unknown scenario", []string{"-scenario", "flood"}},
		{"scenario flag without scenario", []string{"-calm-for", "1s"}},
		{"scenario with URL", []string{"-scenario", "overload", "http://127.0.0.1:1/answer"}},
		{"scenario with html", []string{"-scenario", "overload", "-format", "html"}},
		{"scenario with rtt", []string{"-scenario", "hang", "-rtt", "10ms"}},
		{"scenario with concurrency", []string{"-scenario", "overload", "-concurrency", "8"}},
		{"scenario with backends", []string{"-scenario", "overload", "-backends", "3"}},
		{"rate for overload", []string{"-scenario", "overload", "-rate", "100"}},
		{"duration for hang", []string{"-scenario", "hang", "-duration", "1s"}},
		{"flag of another scenario", []string{"-scenario", "slow-replica", "-hang-for", "1s"}},
		{"mode of another scenario", []string{"-scenario", "hang", "-modes", "warmpool-adaptive"}},
		{"negative deadline", []string{"-scenario", "overload", "-deadline", "-1s"}},
		{"slow share above 1", []string{"-scenario", "slow-replica", "-slow-share", "2"}},
		{"no handlers", []string{"-scenario", "overload", "-capacity-handlers", "-1"}},
		{"missing config", []string{"-scenario", "overload", "-config", "testdata/no-such-config.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, _, err := benchCLI(t, tt.args...)
			if code := exitCode(err); code != 2 {
				t.Errorf("got %v (exit %d), want a usage error (exit 2)", err, code)
			}
			if stdout != "" {
				t.Errorf("stdout: got %q, want nothing", stdout)
			}
		})
	}
}

func TestBenchScenarioEndToEnd(t *testing.T) {
	t.Run("json", func(t *testing.T) {
		stdout, stderr, err := benchCLI(t, "-scenario", "slow-replica", "-duration", "300ms", "-rate", "50", "-capacity-handlers", "2",
			"-modes", "tuned-net/http,warmpool", "-format", "json")
		if err != nil {
			t.Fatalf("got %v; stderr:\n%s", err, stderr)
		}
		var rep bench.ScenarioReport
		dec := json.NewDecoder(strings.NewReader(stdout))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rep); err != nil {
			t.Fatal(err)
		}
		if len(rep.Modes) != 2 || rep.Settings.Handlers != 2 || len(rep.Definitions) == 0 || !strings.HasPrefix(rep.Verdict, "slow-replica: ") {
			t.Errorf("modes %d, handlers %d, %d definitions, verdict %q", len(rep.Modes), rep.Settings.Handlers, len(rep.Definitions), rep.Verdict)
		}
		if got := rep.Modes[0].Total.Calls; got != 15 {
			t.Errorf("tuned-net/http made %d calls, want 15 (50/s for 300ms)", got)
		}
	})
	t.Run("text", func(t *testing.T) {
		stdout, stderr, err := benchCLI(t, "-scenario", "hang", "-rate", "20", "-request-timeout", "100ms", "-calm-for", "200ms",
			"-hang-for", "500ms", "-after-for", "300ms", "-breaker-failures", "1", "-modes", "warmpool-breaker")
		if err != nil {
			t.Fatalf("got %v; stderr:\n%s", err, stderr)
		}
		for _, want := range []string{"warmpool bench -scenario hang", "Phase hung: 20 calls/s for 0.5s", "Hang and recovery:",
			"Targets (issue 16", "\nverdict: hang: "} {
			if !strings.Contains(stdout, want) {
				t.Errorf("the report lacks %q:\n%s", want, stdout)
			}
		}
	})
}
