package bench

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCPUDelta(t *testing.T) {
	before := cpuTime{user: 2 * time.Second, sys: 500 * time.Millisecond}
	after := cpuTime{user: 3 * time.Second, sys: 800 * time.Millisecond}
	d := after.sub(before)
	if d.user != time.Second || d.sys != 300*time.Millisecond {
		t.Fatalf("sub: got %+v, want 1s user, 300ms sys", d)
	}
	got := cpuReport(d, 1300)
	want := &CPU{UserS: 1, SysS: 0.3, UsPerRequest: 1000}
	if *got != *want {
		t.Errorf("cpuReport: got %+v, want %+v", got, want)
	}
	if cpuReport(d, 0) != nil {
		t.Error("cpuReport with no requests: want nil")
	}
}

func TestCPUMeterMeasuresWork(t *testing.T) {
	m := startCPU()
	if !m.ok {
		t.Skip("getrusage not available")
	}
	// Spin until the process has used 20ms more CPU (on a busy machine that
	// takes longer than 20ms of wall time), at most 5s.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if now, _ := cpuTimes(); now.sub(m.start).user+now.sub(m.start).sys >= 20*time.Millisecond {
			break
		}
	}
	used, ok := m.stop()
	if !ok || used.user+used.sys < 20*time.Millisecond {
		t.Errorf("got %+v, want ≥ 20ms of CPU", used)
	}
}

func TestCPUModel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpuinfo")
	os.WriteFile(path, []byte("processor\t: 0\nvendor_id\t: X\nmodel name\t: Example CPU 9000\nflags\t: a b\n"), 0o644)
	if got := cpuModel(path); got != "Example CPU 9000" {
		t.Errorf("got %q", got)
	}
	if got := cpuModel(filepath.Join(t.TempDir(), "none")); got != "" {
		t.Errorf("missing file: got %q, want empty", got)
	}
}

func TestLoadAvg(t *testing.T) {
	path := filepath.Join(t.TempDir(), "loadavg")
	os.WriteFile(path, []byte("1.25 0.80 0.50 2/345 6789\n"), 0o644)
	if got := loadAvg(path); got == nil || *got != 1.25 {
		t.Errorf("got %v, want 1.25", got)
	}
	if got := loadAvg(filepath.Join(t.TempDir(), "none")); got != nil {
		t.Errorf("missing file: got %v, want nil", *got)
	}
}
