package bench

import (
	"context"
	"testing"
	"time"
)

// TestRunFleet: net/http's default client pins every request on the first
// backend; warmpool spreads them, and gives an added backend its share.
func TestRunFleet(t *testing.T) {
	rep, err := RunFleet(context.Background(), FleetSettings{
		Backends: 3, Modes: []string{ModeDefault, ModeWarmpool}, Concurrency: 8,
		Duration: 4 * time.Second, AddAt: time.Second, KillAt: 3 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Backends) != 4 || len(rep.Modes) != 2 || len(rep.Events) != 2 {
		t.Fatalf("backends %v, %d modes, events %v; want 4, 2, 2", rep.Backends, len(rep.Modes), rep.Events)
	}
	def, wp := rep.Modes[0], rep.Modes[1]
	if sh := def.Phases[0].Share; sh[0] < 0.99 {
		t.Errorf("default before the events: shares %v, want all on the first backend", sh)
	}
	for i, sh := range wp.Phases[0].Share[:3] {
		if sh < 0.2 {
			t.Errorf("warmpool before the events: backend %d took %.2f, want ≥ 0.2 (shares %v)", i, sh, wp.Phases[0].Share)
		}
	}
	// Resolved every FleetResolveInterval (1s), judged over 300ms windows.
	if wp.NewBackendShareAfterS < 0 || wp.NewBackendShareAfterS > 1.8 {
		t.Errorf("warmpool: the new backend had its share after %gs, want within 1.8s", wp.NewBackendShareAfterS)
	}
	if sh := wp.Phases[2].Share; sh[0] > 0.05 {
		t.Errorf("warmpool after the kill: the killed backend took %.2f, want ~0", sh[0])
	}
}
