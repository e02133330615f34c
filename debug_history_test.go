package warmpool

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/refserver"
)

// testHistory is a history of c sampled only by the test, at times it
// chooses.
func testHistory(c *Client, start time.Time) *debugHistory {
	return &debugHistory{c: c, total: newHostRing(), hosts: make(map[string]*hostRing), prevT: start,
		next: start.Truncate(historyInterval).Add(historyInterval)}
}

func TestDebugHistorySamples(t *testing.T) {
	srv := startServer(t, refserver.Options{})
	cfg := DefaultConfig()
	cfg.MaxRetries = -1
	c := newClient(t, srv, cfg, WithLogger(discardLogger()))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/answer"
	ln.Close()
	host := srv.URL()[len("http://"):]

	start := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	h := testHistory(c, start)
	for range 3 {
		if err := c.PostJSON(context.Background(), srv.URL()+"/answer", question, nil); err != nil {
			t.Fatal(err)
		}
	}
	h.sample(start.Add(5 * time.Second))
	h.sample(start.Add(7 * time.Second)) // not due: no sample
	if err := c.PostJSON(context.Background(), dead, question, nil); ErrorKind(err) != "refused" {
		t.Fatalf("the closed port: %v, want a refused connection", err)
	}
	h.sample(start.Add(10 * time.Second))

	st := c.Stats()
	v := h.view(start.Add(12*time.Second), &st)
	if want := []int64{5000, 5000, 2000}; !slices.Equal(v.DurMS, want) {
		t.Errorf("intervals %v ms, want %v", v.DurMS, want)
	}
	tot := v.Total
	for _, c := range []struct {
		name      string
		got, want []int64
	}{
		{"total requests", tot.Requests, []int64{3, 0, 0}},
		{"total created", tot.Created, []int64{1, 0, 0}},
		{"total dial failures", tot.DialFailures, []int64{0, 1, 0}},
		{"refused attempts", tot.Failures["refused"], []int64{0, 1, 0}},
		{"host open", v.Hosts[host].Open, []int64{1, 1, 1}},
		{"host requests", v.Hosts[host].Requests, []int64{3, 0, 0}},
		{"host p50 (the live point: Stats')", v.Hosts[host].P50us[2:], []int64{st.Hosts[host].LatencyP50.Microseconds()}},
	} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
	if len(tot.Failures) != 1 {
		t.Errorf("failure kinds charted: %v, want refused alone", tot.Failures)
	}
}

func TestDebugHistoryWrapsAfterFiveMinutes(t *testing.T) {
	srv := startServer(t, refserver.Options{})
	c := newClient(t, srv, Config{}, WithLogger(discardLogger()))
	start := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	h := testHistory(c, start)
	const samples = historySlots + 10
	for i := range samples {
		if err := c.PostJSON(context.Background(), srv.URL()+"/answer", question, nil); err != nil {
			t.Fatal(err)
		}
		h.sample(start.Add(time.Duration(i+1) * historyInterval))
	}
	st := c.Stats()
	now := start.Add(samples*historyInterval + time.Second)
	v := h.view(now, &st)
	if len(v.EndMS) != historySlots+1 {
		t.Fatalf("%d points, want %d and the live one", len(v.EndMS), historySlots)
	}
	if first := start.Add(11 * historyInterval).UnixMilli(); v.EndMS[0] != first || v.EndMS[historySlots] != now.UnixMilli() {
		t.Errorf("points from %d to %d, want %d to %d", v.EndMS[0], v.EndMS[historySlots], first, now.UnixMilli())
	}
	if !slices.IsSorted(v.EndMS) {
		t.Errorf("points out of order: %v", v.EndMS)
	}
	for i, n := range v.Total.Requests[:historySlots] {
		if n != 1 {
			t.Fatalf("point %d: %d requests, want 1 in each interval", i, n)
		}
	}
}
