package warmpool

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/refserver"
)

// 8. The backend answers 503 to everything for 3 s: the retry budget keeps
// the load it sees near what callers ask for.
func faultRetryStorm(t *testing.T) {
	const workers = 8
	srv := startServer(t, refserver.Options{})
	cfg := faultConfig()
	cfg.RetryBackoffFactor = 0.01
	cfg.RetryMaxBackoff = 50 * time.Millisecond
	born := time.Now() // the budget's floor accrues from the client's start
	c := newClient(t, srv, cfg)
	url := srv.URL() + "/answer"
	srv.SetStatus(http.StatusServiceUnavailable)
	start := time.Now()
	calls := faultCalls(t, workers, workers*10_000, 3*time.Second, faultPause(5*time.Millisecond, 5*time.Millisecond), nil, func(int) error { return post(c, url) })
	storm, ran := time.Since(start), time.Since(born)
	ft, st, cs := faultCount(calls), srv.Stats(), c.Stats()
	faultSummary(t, "retry storm", ft, st, cs)
	if err := ft.only("status_503"); err != nil {
		t.Error(err)
	}
	// Attempts reaching the server: the calls, plus the budget's share of
	// them, plus its floor for each second (the floor counts from the
	// client's start, with one second in hand). The budget is lock-free:
	// withdrawals racing at its limit may overshoot it by one per worker.
	secs := ran.Seconds() + 1
	allowed := (1+cfg.RetryBudgetPercent/100)*float64(ft.sent) + cfg.RetryBudgetMinPerSecond*secs + workers
	t.Logf("retry storm: %d calls in %s sent %d requests to the server (%.2f per call), budget allows %.0f",
		ft.sent, storm.Round(time.Millisecond), st.Requests, float64(st.Requests)/float64(ft.sent), allowed)
	if float64(st.Requests) > allowed {
		t.Errorf("server saw %d requests for %d calls in %s, want ≤ %.0f", st.Requests, ft.sent, storm.Round(time.Millisecond), allowed)
	}
	if cs.BudgetRefusals == 0 {
		t.Error("the budget refused no retry")
	}
	srv.SetStatus(0)
	before := srv.Stats().Requests
	recovered := time.Now()
	after := faultCalls(t, 8, 8*5, 5*time.Second, nil, nil, func(int) error { return post(c, url) })
	fa := faultCount(after)
	t.Logf("after recovery: %s, first call done %s after", fa, faultFirstEnd(after).Sub(recovered).Round(time.Millisecond))
	if fa.failed != 0 {
		t.Errorf("after recovery %d calls failed: %v", fa.failed, fa.only())
	}
	if got := srv.Stats().Requests - before; got != int64(fa.sent) {
		t.Errorf("after recovery the server saw %d requests for %d calls, want one each (success at once)", got, fa.sent)
	}
}

func faultFirstEnd(calls []faultCall) time.Time {
	var first time.Time
	for _, c := range calls {
		if first.IsZero() || c.end.Before(first) {
			first = c.end
		}
	}
	return first
}

// 9. 429 with Retry-After: 1. The retry waits the second the server asked
// for; a caller's deadline shorter than that ends the call at once.
func faultRetryAfter(t *testing.T) {
	// server answers 429 with Retry-After: retryAfter to the first tooMany
	// requests, then 200, and records when each arrived.
	server := func(t *testing.T, retryAfter string, tooMany int) (*httptest.Server, func() []time.Time) {
		var (
			mu       sync.Mutex
			arrivals []time.Time
		)
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			arrivals = append(arrivals, time.Now())
			n := len(arrivals)
			mu.Unlock()
			if n <= tooMany {
				w.Header().Set("Retry-After", retryAfter)
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			_, _ = io.WriteString(w, "ok")
		}))
		t.Cleanup(ts.Close)
		return ts, func() []time.Time {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(arrivals)
		}
	}
	client := func(t *testing.T, cfg Config, hooks Hooks) *Client {
		c, err := New(cfg, WithHooks(hooks))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	t.Run("waits_as_asked", func(t *testing.T) {
		ts, arrivals := server(t, "1", 1)
		var mu sync.Mutex
		var retries []RetryInfo
		cfg := faultConfig()
		cfg.RetryMaxBackoff = 10 * time.Second // Retry-After may ask up to that
		c := client(t, cfg, Hooks{Retry: func(ri RetryInfo) { mu.Lock(); retries = append(retries, ri); mu.Unlock() }})
		if err := faultGet(context.Background(), c, ts.URL); err != nil {
			t.Fatalf("GET: %v", err)
		}
		a := arrivals()
		if len(a) != 2 {
			t.Fatalf("server saw %d requests, want 2", len(a))
		}
		gap := a[1].Sub(a[0])
		t.Logf("retry after: %d requests, next attempt %s after the 429, retries %+v", len(a), gap.Round(time.Millisecond), retries)
		if gap < time.Second {
			t.Errorf("the retry came %s after the 429, want ≥ 1s (Retry-After: 1)", gap)
		}
		if len(retries) != 1 || retries[0].Wait != time.Second || retries[0].StatusCode != http.StatusTooManyRequests {
			t.Errorf("Retry hook saw %+v, want one retry after a 429 waiting 1s", retries)
		}
	})
	t.Run("deadline_shorter_than_retry_after", func(t *testing.T) {
		ts, arrivals := server(t, "1", 100)
		cfg := faultConfig()
		cfg.RetryMaxBackoff = 10 * time.Second
		c := client(t, cfg, Hooks{})
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := faultGet(ctx, c, ts.URL)
		d := time.Since(start)
		t.Logf("retry after past the deadline: ended after %s with %v", d.Round(time.Millisecond), err)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, want a deadline error", err)
		}
		var re *RetryError
		if !errors.As(err, &re) || re.LastStatus != http.StatusTooManyRequests {
			t.Errorf("got %v, want a *RetryError with last status 429", err)
		}
		if d > 300*time.Millisecond {
			t.Errorf("call ended after %s, want at once, before its 300ms deadline and well before the 1s Retry-After", d)
		}
		if n := len(arrivals()); n != 1 {
			t.Errorf("server saw %d requests, want 1", n)
		}
	})
	t.Run("retry_after_beyond_max_backoff", func(t *testing.T) {
		ts, arrivals := server(t, "60", 100)
		cfg := faultConfig()
		cfg.RetryMaxBackoff = 10 * time.Second
		c := client(t, cfg, Hooks{})
		start := time.Now()
		err := faultGet(context.Background(), c, ts.URL)
		var se *StatusError
		if !errors.As(err, &se) || se.StatusCode != http.StatusTooManyRequests {
			t.Errorf("got %v, want the 429", err)
		}
		if n := len(arrivals()); n != 1 || time.Since(start) > time.Second {
			t.Errorf("server saw %d requests in %s, want 1 at once (Retry-After beyond retry_max_backoff stops)", n, time.Since(start))
		}
	})
}
