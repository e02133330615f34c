package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/bench"
	benchreport "github.com/warmpool/warmpool/internal/bench/report"
)

// scenarioFlags are the flags of "warmpool bench -scenario" alone.
var scenarioFlags = []string{"scenario", "capacity-handlers", "service-time", "deadline", "request-timeout", "calm-for", "overload-for",
	"after-for", "calm-load", "overload-load", "hang-for", "breaker-failures", "slow-share", "slow-delay"}

// checkScenario checks the flags of a scenario run and fills in f.scn. A
// scenario has its own in-process servers, an open-model load and a text or
// JSON report: the flags for the other runs do not apply.
func checkScenario(cmd *command, f *benchFlags, positional []string) error {
	for _, name := range []string{"proto", "rtt", "jitter", "bandwidth", "rounds", "requests", "token", "token-mode", "token-fetch",
		"insecure", "server-delay", "server-idle-timeout", "server-max-requests", "html", "backends", "add-backend-at",
		"kill-backend-at", "data", "concurrency"} {
		if cmd.set(name) {
			return usagef("bench", "-%s does not apply to -scenario, which runs its own server of fixed capacity under an open-model load", name)
		}
	}
	s := &f.scn
	switch {
	case !cmd.set("scenario"):
		return usagef("bench", "-%s needs -scenario", firstSet(cmd, scenarioFlags))
	case !slices.Contains(bench.ScenarioNames, s.Scenario):
		return usagef("bench", "-scenario %q: want one of %s", s.Scenario, strings.Join(bench.ScenarioNames, ", "))
	case len(positional) > 0:
		return usagef("bench", "-scenario runs its own server: no URL")
	case f.out.format == "html":
		return usagef("bench", "-scenario reports as text or json")
	case cmd.set("rate") && s.Scenario == bench.ScenarioOverload:
		return usagef("bench", "-rate does not apply to the overload scenario: -calm-load and -overload-load set its rates from the capacity")
	case cmd.set("duration") && s.Scenario != bench.ScenarioSlowReplica:
		return usagef("bench", "-duration is slow-replica's; the phases of %s have their own (-calm-for, -overload-for, -hang-for, -after-for)", s.Scenario)
	}
	if err := scenarioFlagsApply(cmd, s.Scenario); err != nil {
		return err
	}
	s.Rate, s.Duration, s.Modes = f.s.Rate, f.s.Duration, benchList(f.modes)
	for _, m := range s.Modes {
		if !slices.Contains(bench.ScenarioModes(s.Scenario), m) {
			return usagef("bench", "-modes %s: scenario %s has %s", m, s.Scenario, strings.Join(bench.ScenarioModes(s.Scenario), ", "))
		}
	}
	cfg, err := warmpool.LoadConfig(f.s.ConfigFile)
	if err != nil {
		return &usageError{cmd: "bench", err: err}
	}
	s.Config, s.ConfigFile = &cfg, f.s.ConfigFile
	if err := s.Check(); err != nil {
		return usagef("bench", "-scenario %s: %v", s.Scenario, err)
	}
	return nil
}

// scenarioFlagsApply rejects the flags of another scenario.
func scenarioFlagsApply(cmd *command, scenario string) error {
	own := map[string][]string{
		bench.ScenarioOverload:    {"calm-for", "overload-for", "after-for", "calm-load", "overload-load"},
		bench.ScenarioHang:        {"calm-for", "after-for", "hang-for", "breaker-failures"},
		bench.ScenarioSlowReplica: {"slow-share", "slow-delay"},
	}
	for _, name := range []string{"calm-for", "overload-for", "after-for", "calm-load", "overload-load", "hang-for", "breaker-failures", "slow-share", "slow-delay"} {
		if cmd.set(name) && !slices.Contains(own[scenario], name) {
			return usagef("bench", "-%s does not apply to the %s scenario", name, scenario)
		}
	}
	return nil
}

// firstSet is the first of names given on the command line.
func firstSet(cmd *command, names []string) string {
	for _, n := range names {
		if cmd.set(n) {
			return n
		}
	}
	return names[0]
}

// runScenarioBench runs a scenario and prints its report. Interrupted, it
// prints the modes that finished, marked partial, and fails.
func runScenarioBench(ctx context.Context, s bench.ScenarioSettings, out benchOutput, stdout, stderr io.Writer) error {
	if benchIsTerminal(stderr) {
		s.Progress = stderr
	}
	rep, err := bench.RunScenario(ctx, s)
	if rep == nil {
		return fmt.Errorf("warmpool bench: %w", err)
	}
	benchreport.FinishScenario(rep)
	write := benchreport.WriteScenarioText
	if out.format == "json" {
		write = benchreport.WriteScenarioJSON
	}
	if werr := write(stdout, rep); werr != nil {
		return fmt.Errorf("warmpool bench: %w", werr)
	}
	if err != nil {
		return fmt.Errorf("warmpool bench: %w; the report holds the modes that finished (partial)", err)
	}
	return nil
}
