package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/bench"
	benchreport "github.com/warmpool/warmpool/internal/bench/report"
)

// checkFleet checks the flags of a fleet run (-backends) and fills in the
// rest of f from them. A fleet run has its own in-process servers over
// cleartext HTTP/1.1, a closed-model load and a text or JSON report: the
// flags for the other runs' servers, network and load models do not apply.
func checkFleet(cmd *command, f *bench.FleetSettings, s bench.Settings, out benchOutput, positional []string, data string) error {
	for _, name := range []string{"proto", "rtt", "jitter", "bandwidth", "rate", "rounds", "requests", "token", "token-mode",
		"token-fetch", "insecure", "server-idle-timeout", "server-max-requests", "html"} {
		if cmd.set(name) {
			return usagef("bench", "-%s does not apply to -backends, which runs its own cleartext servers under a closed-model load", name)
		}
	}
	switch {
	case len(positional) > 0:
		return usagef("bench", "-backends runs its own servers: no URL")
	case !cmd.set("backends"):
		return usagef("bench", "-add-backend-at and -kill-backend-at need -backends")
	case f.Backends < 1 || f.Backends >= bench.MaxBackends:
		return usagef("bench", "-backends %d: want 1 to %d", f.Backends, bench.MaxBackends-1)
	case out.format == "html":
		return usagef("bench", "-backends reports as text or json")
	case cmd.set("duration") && f.Duration <= 0:
		return usagef("bench", "-duration must be positive")
	case f.Concurrency < 1:
		return usagef("bench", "-concurrency must be at least 1")
	case f.AddAt < 0 || f.KillAt < 0:
		return usagef("bench", "-add-backend-at and -kill-backend-at must not be negative")
	case f.Duration > 0 && (f.AddAt >= f.Duration || f.KillAt >= f.Duration):
		return usagef("bench", "-add-backend-at and -kill-backend-at must fall within -duration (%s)", f.Duration)
	}
	if data != "" {
		f.Body = s.Body
		if f.Body == nil {
			f.Body = []byte(data)
			if name, ok := strings.CutPrefix(data, "@"); ok {
				b, err := os.ReadFile(name)
				if err != nil {
					return usagef("bench", "-data: %v", err)
				}
				f.Body = b
			}
		}
	}
	cfg, err := warmpool.LoadConfig(s.ConfigFile)
	if err != nil {
		return &usageError{cmd: "bench", err: err}
	}
	f.Config = &cfg
	for _, m := range f.Modes {
		if !slices.Contains(bench.FleetModes, m) {
			return usagef("bench", "-modes %s: with -backends, want some of %v", m, bench.FleetModes)
		}
	}
	return nil
}

// runFleetBench runs a fleet benchmark and prints its report.
func runFleetBench(ctx context.Context, f bench.FleetSettings, out benchOutput, stdout, stderr io.Writer) error {
	if benchIsTerminal(stderr) {
		f.Progress = stderr
	}
	rep, err := bench.RunFleet(ctx, f)
	if rep == nil {
		return fmt.Errorf("warmpool bench: %w", err)
	}
	write := benchreport.WriteFleetText
	if out.format == "json" {
		write = benchreport.WriteFleetJSON
	}
	if werr := write(stdout, rep); werr != nil {
		return fmt.Errorf("warmpool bench: %w", werr)
	}
	if err != nil {
		return fmt.Errorf("warmpool bench: %w; the report holds the modes that finished (partial)", err)
	}
	return nil
}
