package diaghook

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestDiagnoseAsksTheRegisteredRules(t *testing.T) {
	if _, ok := Diagnose(1, 2); ok {
		t.Fatal("Diagnose before Register: ok, want false (package doctor is not linked here)")
	}
	var got [2]any
	Register(func(stats, cfg any) []Finding {
		got = [2]any{stats, cfg}
		return []Finding{{Rule: "pool-timeouts", Severity: "error", Host: "a:80", Message: "m", Fix: "f"}}
	})
	fs, ok := Diagnose("stats", "cfg")
	if !ok || len(fs) != 1 || got != [2]any{"stats", "cfg"} {
		t.Errorf("got %v, %v (rules saw %v), want the registered rules' one finding, given stats and cfg", fs, ok, got)
	}
	if s, want := fs[0].String(), "error: a:80: m; fix: f"; s != want {
		t.Errorf("String() = %q, want %q", s, want)
	}
}
