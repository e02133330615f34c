package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/warmpool/warmpool/internal/bench"
)

func TestErrorKinds(t *testing.T) {
	got := bench.NewErrorCounts(map[string]int64{"timeout": 1, "pool_timeout": 2, "refused": 3, "reset": 4, "idle_race": 5,
		"status": 6, "certificate": 7, "other": 8, "canceled": 0})
	if want := "8 other, 7 certificate, 6 status, 5 idle_race, 4 reset, 3 refused, 2 pool_timeout, 1 timeout"; errorKinds(got) != want {
		t.Errorf("got %q, want %q", errorKinds(got), want)
	}
	if got := errorKinds(bench.NewErrorCounts(nil)); got != "-" {
		t.Errorf("no errors: got %q, want -", got)
	}
}

func TestTextStatesServerLimits(t *testing.T) {
	r := syntheticReport()
	r.Settings.ServerMaxRequestsPerConn = 5
	var text bytes.Buffer
	if err := WriteText(&text, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "server: closes a connection after 5 requests\n") {
		t.Errorf("the report does not state the server's limit:\n%s", text.String())
	}
}

func TestFleetText(t *testing.T) {
	rep := &bench.FleetReport{
		Name: bench.FleetName + ":8080", ResolveS: 1, Concurrency: 8, DurationS: 4,
		Backends: []string{"127.0.0.1:8080", "127.0.0.2:8080", "127.0.0.3:8080", "127.0.0.4:8080"},
		Events:   []bench.FleetEvent{{AtS: 1, Kind: "add", Backend: "127.0.0.4:8080"}, {AtS: 3, Kind: "kill", Backend: "127.0.0.1:8080"}},
		Modes: []bench.FleetModeResult{
			{Mode: bench.ModeDefault, Requests: 4000, ReqPerS: 1000, Served: []int64{4000, 0, 0, 0}, Share: []float64{1, 0, 0, 0},
				NewBackendShareAfterS: -1, ErrorsAfterKill: 8, ErrorsStoppedAfterS: 0.01, ErrorSamples: []string{"connection refused"}},
			{Mode: bench.ModeWarmpool, Balancer: "p2c", Requests: 4000, ReqPerS: 1000, Served: []int64{900, 1100, 1100, 900},
				Share: []float64{0.225, 0.275, 0.275, 0.225}, NewBackendShareAfterS: 1.2,
				Phases: []bench.FleetPhase{{FromS: 0, ToS: 1, Share: []float64{0.33, 0.33, 0.34, 0}}, {FromS: 1, ToS: 4, Share: []float64{0.2, 0.27, 0.27, 0.26}}}},
		},
	}
	var b bytes.Buffer
	if err := WriteFleetText(&b, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"3 backends behind " + bench.FleetName, "warmpool (p2c)", "new backend had its share after", "is killed",
		"1.2s", "never", "default error: connection refused"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, b.String())
		}
	}
	var js bytes.Buffer
	if err := WriteFleetJSON(&js, rep); err != nil || !strings.Contains(js.String(), `"new_backend_share_after_s": 1.2`) {
		t.Errorf("JSON: %v\n%s", err, js.String())
	}
}
