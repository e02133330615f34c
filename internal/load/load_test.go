package load

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// collect runs s with call and returns the summary and every record, in
// call order.
func collect(t *testing.T, ctx context.Context, s Spec, call Call) (Summary, []Record) {
	t.Helper()
	var mu sync.Mutex
	var recs []Record
	sum := Run(ctx, s, call, func(r Record) {
		if r.Worker < 0 || r.Worker >= s.Workers {
			t.Errorf("call %d on worker %d, want 0 ≤ worker < %d", r.I, r.Worker, s.Workers)
		}
		mu.Lock()
		recs = append(recs, r)
		mu.Unlock()
	})
	slices.SortFunc(recs, func(a, b Record) int { return int(a.I - b.I) })
	if int64(len(recs)) != sum.Made {
		t.Errorf("got %d records, want one per call made (%d)", len(recs), sum.Made)
	}
	return sum, recs
}

func ok(context.Context, int64, int) (int, error) { return 200, nil }

// blockUntilEnd is a call that returns only when its context ends.
func blockUntilEnd(ctx context.Context, _ int64, _ int) (int, error) {
	<-ctx.Done()
	return 0, ctx.Err()
}

func TestClosedStopsAtRequests(t *testing.T) {
	sum, recs := collect(t, t.Context(), Spec{Workers: 4, Requests: 100, Duration: time.Minute}, ok)
	if sum.Made != 100 || len(recs) != 100 {
		t.Fatalf("made %d calls, want 100", sum.Made)
	}
	for i, r := range recs {
		if r.I != int64(i) || r.Status != 200 || r.Err != nil || r.Cut || r.End.Before(r.Start) || !r.Due.Equal(r.Start) && r.Start.Before(r.Due) {
			t.Errorf("record %d: %+v, want call %d, status 200, no error, not cut, due ≤ start ≤ end", i, r, i)
		}
	}
	if sum.Scheduled != 0 || sum.Late != 0 || sum.Dropped != 0 {
		t.Errorf("closed model: scheduled, late, dropped %d, %d, %d, want zeros", sum.Scheduled, sum.Late, sum.Dropped)
	}
}

func TestClosedStopsAtDuration(t *testing.T) {
	const d = 50 * time.Millisecond
	sum, recs := collect(t, t.Context(), Spec{Workers: 2, Duration: d}, func(context.Context, int64, int) (int, error) {
		time.Sleep(time.Millisecond)
		return 200, nil
	})
	if sum.Made < 1 || sum.Elapsed < d {
		t.Errorf("made %d calls in %v, want some, over at least %v", sum.Made, sum.Elapsed, d)
	}
	for _, r := range recs {
		if r.Start.Sub(sum.Start) >= d {
			t.Errorf("call %d started %v after the start, want before the duration (%v)", r.I, r.Start.Sub(sum.Start), d)
		}
	}
}

func TestClosedStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	sum, recs := collect(t, ctx, Spec{Workers: 1, Requests: 1000, Duration: time.Minute}, func(ctx context.Context, i int64, _ int) (int, error) {
		if i == 4 {
			cancel()
		}
		return 0, ctx.Err()
	})
	if sum.Made != 5 {
		t.Fatalf("made %d calls, want 5: the fifth cancelled the run", sum.Made)
	}
	if last := recs[4]; !last.Cut || !errors.Is(last.Err, context.Canceled) || recs[3].Cut {
		t.Errorf("cut: got %v, %v (err %v), want only the last call cut, with context.Canceled", recs[3].Cut, last.Cut, last.Err)
	}
}

func TestGraceCutsCallsAtTheEnd(t *testing.T) {
	for _, grace := range []time.Duration{0, 20 * time.Millisecond} {
		sum, recs := collect(t, t.Context(), Spec{Workers: 3, Requests: 10, Duration: 20 * time.Millisecond, Grace: grace}, blockUntilEnd)
		if sum.Made != 3 {
			t.Fatalf("grace %v: made %d calls, want 3: one per worker, each held until the end", grace, sum.Made)
		}
		for _, r := range recs {
			if !r.Cut || !errors.Is(r.Err, context.DeadlineExceeded) {
				t.Errorf("grace %v: call %d: cut %v, err %v, want cut by the run's deadline", grace, r.I, r.Cut, r.Err)
			}
		}
		if sum.Elapsed < 20*time.Millisecond+grace {
			t.Errorf("grace %v: elapsed %v, want at least the duration and the grace", grace, sum.Elapsed)
		}
	}
}

func TestCallTimeout(t *testing.T) {
	sum, recs := collect(t, t.Context(), Spec{Workers: 2, Requests: 4, Duration: time.Minute, CallTimeout: 5 * time.Millisecond}, blockUntilEnd)
	if sum.Made != 4 {
		t.Fatalf("made %d calls, want 4", sum.Made)
	}
	for _, r := range recs {
		if r.Cut || !errors.Is(r.Err, context.DeadlineExceeded) || r.End.Sub(r.Start) < 5*time.Millisecond {
			t.Errorf("call %d: cut %v, err %v, took %v, want its own deadline after 5ms, the run going on", r.I, r.Cut, r.Err, r.End.Sub(r.Start))
		}
	}
}

func TestPauseBetweenCalls(t *testing.T) {
	const pause = 10 * time.Millisecond
	_, recs := collect(t, t.Context(), Spec{Workers: 1, Requests: 3, Duration: time.Minute, Pause: pause}, ok)
	if len(recs) != 3 {
		t.Fatalf("made %d calls, want 3", len(recs))
	}
	for i := 1; i < len(recs); i++ {
		if gap := recs[i].Start.Sub(recs[i-1].End); gap < pause {
			t.Errorf("gap before call %d: %v, want at least the pause %v", i, gap, pause)
		}
	}
}

func TestOpenKeepsTheSchedule(t *testing.T) {
	const rate = 2000.0
	sum, recs := collect(t, t.Context(), Spec{Workers: 4, Rate: rate, Requests: 50, Duration: time.Minute}, ok)
	if sum.Scheduled != 50 || sum.Made != 50 || sum.Dropped != 0 {
		t.Fatalf("scheduled %d, made %d, dropped %d, want 50, 50, 0", sum.Scheduled, sum.Made, sum.Dropped)
	}
	for i, r := range recs {
		if want := sum.Start.Add(DueAt(int64(i), rate)); !r.Due.Equal(want) || r.Start.Before(r.Due) {
			t.Errorf("call %d: due %v after the start, started %v after; want due %v, started no earlier",
				i, r.Due.Sub(sum.Start), r.Start.Sub(sum.Start), want.Sub(sum.Start))
		}
	}
}

// TestOpenWaitsForAWorker: calls slower than the rate wait for the one
// worker, start late, and count their wait in their latency.
func TestOpenWaitsForAWorker(t *testing.T) {
	sum, recs := collect(t, t.Context(), Spec{Workers: 1, Rate: 1000, Requests: 10, Duration: time.Minute},
		func(context.Context, int64, int) (int, error) {
			time.Sleep(5 * time.Millisecond)
			return 200, nil
		})
	if sum.Made != 10 || sum.Late < 9 {
		t.Fatalf("made %d, late %d, want all 10 made, at least 9 late", sum.Made, sum.Late)
	}
	last := recs[9]
	if wait := last.Start.Sub(last.Due); wait < 30*time.Millisecond || last.Latency() < wait {
		t.Errorf("last call waited %v, latency %v; want a wait of at least 9 × (5ms − 1ms), inside its latency", wait, last.Latency())
	}
}

// TestOpenDropsWhenFull: with DropWhenFull, two workers held by slow calls
// do not hold back the schedule: every other call due meanwhile is dropped.
func TestOpenDropsWhenFull(t *testing.T) {
	s := Spec{Workers: 2, Rate: 1000, Duration: 100 * time.Millisecond, Grace: 10 * time.Second,
		CallTimeout: 300 * time.Millisecond, DropWhenFull: true}
	sum, recs := collect(t, t.Context(), s, blockUntilEnd)
	if sum.Scheduled != 100 || sum.Made+sum.Dropped != 100 || sum.Dropped < 90 {
		t.Errorf("scheduled %d, made %d, dropped %d, want 100 scheduled, each made or dropped, most dropped", sum.Scheduled, sum.Made, sum.Dropped)
	}
	for _, r := range recs {
		if r.Cut || !errors.Is(r.Err, context.DeadlineExceeded) {
			t.Errorf("call %d: cut %v, err %v, want its own deadline, within the grace", r.I, r.Cut, r.Err)
		}
	}
}

func TestOpenStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	sum, recs := collect(t, ctx, Spec{Workers: 2, Rate: 1000, Duration: time.Minute}, func(_ context.Context, i int64, _ int) (int, error) {
		if i == 9 {
			cancel()
		}
		return 200, nil
	})
	// A call handed to a worker just before the cancel may be left unmade.
	if !slices.ContainsFunc(recs, func(r Record) bool { return r.I == 9 }) || sum.Made > 12 || sum.Elapsed > 30*time.Second {
		t.Errorf("made %d calls in %v, want call 9 and at most a few more, the run stopping at the cancel", sum.Made, sum.Elapsed)
	}
}

func TestScheduledWithin(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		rate float64
		want int64
	}{
		{time.Second, 1000, 1000},
		{100 * time.Millisecond, 1000, 100},
		{300 * time.Millisecond, 200, 60}, // due at 0, 5ms, … 295ms
		{time.Second, 3, 3},               // 0, 333ms, 667ms
		{time.Second, 0.5, 1},             // 0 only
		{10 * time.Millisecond, 7, 1},
		{10 * time.Millisecond, 1e6, 10000},
	} {
		got := ScheduledWithin(tc.d, tc.rate)
		if got != tc.want || DueAt(got-1, tc.rate) >= tc.d || DueAt(got, tc.rate) < tc.d {
			t.Errorf("ScheduledWithin(%v, %v) = %d, want %d: the last due before %v, the next not", tc.d, tc.rate, got, tc.want, tc.d)
		}
	}
}

func TestSpecValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Spec
	}{
		{"no workers", Spec{Duration: time.Second}},
		{"no duration", Spec{Workers: 1, Requests: 10}},
		{"negative rate", Spec{Workers: 1, Duration: time.Second, Rate: -1}},
		{"negative grace", Spec{Workers: 1, Duration: time.Second, Grace: -1}},
		{"pause with a rate", Spec{Workers: 1, Duration: time.Second, Rate: 10, Pause: time.Millisecond}},
		{"drop in the closed model", Spec{Workers: 1, Duration: time.Second, DropWhenFull: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.s.Validate() == nil {
				t.Errorf("Validate(%+v) = nil, want an error", tc.s)
			}
		})
	}
	if err := (Spec{Workers: 1, Duration: time.Second}).Validate(); err != nil {
		t.Errorf("a minimal spec: %v, want nil", err)
	}
}
