package main

import (
	"context"
	"strings"
	"testing"

	"github.com/warmpool/warmpool"
)

func TestVersionCommand(t *testing.T) {
	stdout, stderr, err := runCLI(t, context.Background(), "version")
	if err != nil {
		t.Fatalf("warmpool version: %v (stderr %q)", err, stderr)
	}
	want := "warmpool " + warmpool.BuildVersion() + "\n"
	if stdout != want {
		t.Errorf("stdout = %q, want %q", stdout, want)
	}
	if !strings.HasPrefix(stdout, "warmpool "+warmpool.Version+" (go") || strings.Contains(stdout, "(devel)") {
		t.Errorf("stdout = %q, want \"warmpool %s (go…)\" and no (devel)", stdout, warmpool.Version)
	}
}
