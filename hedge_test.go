package warmpool

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// slowEvery is a backend whose every nth request (1-based) takes slow; the
// others answer at once. It counts the requests it received, and those it
// was still working on when their client went away (cancelled).
type slowEvery struct {
	*httptest.Server
	n         int64
	slow      time.Duration
	received  atomic.Int64
	cancelled atomic.Int64
}

func startSlowEvery(t testing.TB, n int64, slow time.Duration) *slowEvery {
	t.Helper()
	s := &slowEvery{n: n, slow: slow}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.received.Add(1)%s.n == 0 {
			select {
			case <-time.After(s.slow):
			case <-r.Context().Done():
				s.cancelled.Add(1)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{}`)
	}))
	t.Cleanup(s.Close)
	return s
}

// TestHedgeCutsTheTail: every 10th request is slow; with hedge_after 20ms a
// second request, on another connection, answers it, and the slow one is
// cancelled. Hedges stay within their share, and the server's count is the
// calls plus the hedges.
func TestHedgeCutsTheTail(t *testing.T) {
	s := startSlowEvery(t, 10, 2*time.Second)
	c, err := New(Config{HedgeAfter: "20ms", HedgeMaxExtraPercent: 20, RetryBudgetMinPerSecond: 100, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const calls = 100
	var worst time.Duration
	for i := range calls {
		start := time.Now()
		if err := get(c, s.URL); err != nil {
			t.Fatalf("GET %d: %v", i, err)
		}
		worst = max(worst, time.Since(start))
	}
	st := c.Stats()
	t.Logf("hedges %d, wins %d, server received %d, cancelled %d, worst call %s", st.Hedges, st.HedgeWins, s.received.Load(), s.cancelled.Load(), worst)
	if worst >= time.Second {
		t.Errorf("worst call took %s: the slow answers (2s) were not hedged", worst)
	}
	if st.Hedges < 9 || st.Hedges > calls*20/100+1 || st.HedgeWins != st.Hedges {
		t.Errorf("%d hedges, %d won; want about one per slow answer (10), within 20 %% of %d calls, each winning", st.Hedges, st.HedgeWins, calls)
	}
	if st.Failures != 0 || st.Retries != 0 || st.LatencyP50 == 0 {
		t.Errorf("Stats: %d failures %v, %d retries, p50 %s; want the cancelled losers counted as no failure, hedges apart from retries, and the attempts measured",
			st.Failures, st.FailuresByKind, st.Retries, st.LatencyP50)
	}
	if got := s.received.Load(); got != calls+st.Hedges {
		t.Errorf("server received %d requests, want %d calls + %d hedges", got, calls, st.Hedges)
	}
	waitFor(t, "the slow requests to be cancelled at the server", 5*time.Second, func() bool { return s.cancelled.Load() >= st.HedgeWins })
}

// TestHedgeBudget: against a backend whose every answer is slow, hedges
// stop at hedge_max_extra_percent of the requests.
func TestHedgeBudget(t *testing.T) {
	s := startSlowEvery(t, 1, 30*time.Millisecond)
	c, err := New(Config{HedgeAfter: "5ms", HedgeMaxExtraPercent: 5, RetryBudgetMinPerSecond: 1000, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const calls = 200
	errs := parallel(calls, func(int) error { return get(c, s.URL) })
	if ok, _, _, first := countErrs(errs, nil); ok != calls {
		t.Fatalf("%d of %d calls succeeded, first error %v", ok, calls, first)
	}
	if st := c.Stats(); st.Hedges > calls*5/100+1 || st.Hedges == 0 {
		t.Errorf("%d hedges for %d calls that all ran past hedge_after, want some, at most 5 %%", st.Hedges, calls)
	}
}

// TestHedgeOnlyIdempotent: a POST is never hedged, nor a call to an
// endpoint at its concurrency limit.
func TestHedgeOnlyIdempotent(t *testing.T) {
	s := startSlowEvery(t, 1, 50*time.Millisecond)
	c, err := New(Config{HedgeAfter: "5ms", HedgeMaxExtraPercent: 100, RetryBudgetMinPerSecond: 1000, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 5 {
		if err := c.DoJSON(context.Background(), http.MethodPost, s.URL, map[string]int{"a": 1}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if st := c.Stats(); st.Hedges != 0 || s.received.Load() != 5 {
		t.Errorf("POSTs: %d hedges, %d requests at the server; want none hedged", st.Hedges, s.received.Load())
	}

	limited, err := New(Config{HedgeAfter: "5ms", HedgeMaxExtraPercent: 100, RetryBudgetMinPerSecond: 1000, MaxRetries: -1, ConcurrencyLimit: "1"})
	if err != nil {
		t.Fatal(err)
	}
	defer limited.Close()
	for range 5 {
		if err := get(limited, s.URL); err != nil {
			t.Fatal(err)
		}
	}
	if st := limited.Stats(); st.Hedges != 0 {
		t.Errorf("at the concurrency limit: %d hedges, want none: a hedge would deepen the queue", st.Hedges)
	}
}

// TestHedgeAfterPercentile: with hedge_after p95 no hedge goes before the
// host has enough answers to know its 95th percentile, then slow answers
// are hedged.
func TestHedgeAfterPercentile(t *testing.T) {
	s := startSlowEvery(t, 25, 2*time.Second)
	c, err := New(Config{HedgeAfter: "p95", HedgeMaxExtraPercent: 20, RetryBudgetMinPerSecond: 100, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 200 {
		if err := get(c, s.URL); err != nil {
			t.Fatalf("GET %d: %v", i, err)
		}
	}
	st := c.Stats()
	if st.Hedges == 0 || st.HedgeWins == 0 || st.LatencyP95 <= 0 || st.LatencyP95 >= time.Second {
		t.Errorf("%d hedges, %d won, p95 %s; want the slow answers (1 in 25) hedged after a p95 well under them", st.Hedges, st.HedgeWins, st.LatencyP95)
	}
}

func TestHedgeAfterConfig(t *testing.T) {
	for _, tc := range []struct{ in, stored, err string }{
		{"p95", "p95", ""},
		{"p99.9", "p99.9", ""},
		{"0.02", "20ms", ""},
		{"20ms", "20ms", ""},
		{"p10", "", "hedge_after"},
		{"fast", "", "hedge_after"},
		{"0", "", "hedge_after"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			cfg, err := ParseConfig([]byte("http_client:\n  hedge_after: "+tc.in+"\n"), "c.yaml")
			if tc.err != "" {
				var ce *ConfigError
				if !errors.As(err, &ce) || !strings.Contains(ce.Key, tc.err) {
					t.Errorf("hedge_after %q: %v, want a *ConfigError naming %s", tc.in, err, tc.err)
				}
				return
			}
			if err != nil || cfg.HedgeAfter != tc.stored {
				t.Errorf("hedge_after %q: %q, %v; want %q", tc.in, cfg.HedgeAfter, err, tc.stored)
			}
		})
	}
}
