package bench

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestProgressStatusLine(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	s, _ := Settings{Protos: []string{ProtoHTTP}, Modes: []string{ModeTuned, ModeWarmpool}, Duration: 3 * time.Second, Rounds: 2}.normalize()
	p := &progress{total: 4, slice: s.slice(0).Duration, rounds: 2, now: func() time.Time { return now }, stopc: make(chan struct{})}
	var out strings.Builder
	p.w = &out

	p.start(ProtoHTTP, ModeTuned, 0)
	now = now.Add(time.Second)
	// 4 slices of 1.5s to go, 1s of the first done; no overhead known yet.
	if got, want := p.statusLine(now), "warmpool bench: [1/4] tuned over http, round 1/2: 1.0s of 1.5s; about 5.0s left"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	now = now.Add(1500 * time.Millisecond) // the slice took 2.5s: 1s beyond its 1.5s
	p.done(&modeRun{res: &runResult{elapsed: 1500 * time.Millisecond, tally: tally{ok: 30}}})
	p.start(ProtoHTTP, ModeWarmpool, 0)
	// 3 slices to go at 1.5s each plus 1s of overhead each.
	if got, want := p.statusLine(now), "warmpool bench: [2/4] warmpool over http, round 1/2: 0.0s of 1.5s; about 7.5s left"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if got, want := out.String(), "\r\033[Kwarmpool bench: [1/4] tuned over http, round 1/2: 30 requests, 20.0 req/s, 0 errors\n"; got != want {
		t.Errorf("done line: got %q, want %q", got, want)
	}
	if got, want := p.stoppedAfter(), "interrupted after 1 of 4 slices (2 rounds per run): a mode's figures cover the rounds it finished"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestFmtClock(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0.0s", 1440 * time.Millisecond: "1.4s", 59 * time.Second: "59s", 65 * time.Second: "1m05s", 10 * time.Minute: "10m00s"} {
		if got := fmtClock(d); got != want {
			t.Errorf("fmtClock(%v): got %q, want %q", d, got, want)
		}
	}
}

// cancelAfter is a progress writer that cancels a context once it has seen
// n lines of finished runs.
type cancelAfter struct {
	mu     sync.Mutex
	n      int
	cancel context.CancelFunc
	b      strings.Builder
}

func (c *cancelAfter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.b.Write(p)
	if strings.Count(c.b.String(), "\n") >= c.n {
		c.cancel()
	}
	return len(p), nil
}

func TestRunInterruptedGivesPartialReport(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &cancelAfter{n: 1, cancel: cancel}
	modes := []string{ModePerRequest, ModeTuned, ModeWarmpool}
	rep, err := Run(ctx, Settings{Protos: []string{ProtoHTTP, ProtoTLS}, Modes: modes, Concurrency: 2, Requests: 20, Duration: time.Minute, Progress: w})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if rep == nil || !rep.Partial || rep.PartialReason != "interrupted after 1 of 6 runs" {
		t.Fatalf("got %+v, want a partial report after 1 of 6 runs", rep)
	}
	if len(rep.Protos) != 1 || len(rep.Protos[0].Modes) != 1 || rep.Protos[0].Modes[0].Mode != ModePerRequest || rep.Protos[0].Modes[0].OK != 20 {
		t.Fatalf("want the one finished run, per-request over http with 20 ok; got %+v", rep.Protos)
	}
}
