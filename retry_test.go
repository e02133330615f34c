package warmpool

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/refserver"
)

func TestRetryParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 11, 26, 21, 40, 0, 0, time.UTC)
	date := func(d time.Duration) string { return now.Add(d).Format(http.TimeFormat) }
	forever := time.Duration(math.MaxInt64)
	tests := []struct {
		name   string
		v      string
		want   time.Duration
		wantOK bool
	}{
		{"empty", "", 0, false},
		{"zero seconds", "0", 0, true},
		{"one second", "1", time.Second, true},
		{"seconds", "120", 120 * time.Second, true},
		{"leading zeros", "007", 7 * time.Second, true},
		{"negative", "-1", 0, false},
		{"fraction", "1.5", 0, false},
		{"garbage", "soon", 0, false},
		{"seconds with unit", "5s", 0, false},
		{"HTTP-date in the future", date(30 * time.Second), 30 * time.Second, true},
		{"HTTP-date now", date(0), 0, true},
		{"HTTP-date in the past", date(-time.Hour), 0, true},
		{"RFC 850 date", now.Add(time.Minute).Format("Monday, 02-Jan-06 15:04:05 GMT"), time.Minute, true},
		{"ANSI C date", now.Add(time.Minute).Format(time.ANSIC), time.Minute, true},
		{"date without zone", "Wed, 26 Nov 2025 21:40:30", 0, false},
		{"huge, within int64 nanoseconds", "9223372036", 9223372036 * time.Second, true},
		{"huge, past int64 nanoseconds", "9223372037", forever, true},
		{"huge, int64 seconds", "9223372036854775807", forever, true},
		// delay-seconds is 1*DIGIT with no upper bound (RFC 9110 10.2.3):
		// a value past int64 is still a valid, very long delay.
		{"huge, past int64 seconds", "99999999999999999999", forever, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseRetryAfter(tt.v, now)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tt.v, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2025, 11, 26, 21, 40, 0, 0, time.UTC)
	for _, s := range []string{"", "0", "1", "120", "-1", "1.5", "+3", "soon", "9223372037", "99999999999999999999",
		now.Format(http.TimeFormat), now.Add(-time.Hour).Format(http.TimeFormat), "Mon, 01 Jan 0001 00:00:00 GMT",
		"Fri, 31 Dec 9999 23:59:59 GMT", now.Format(time.ANSIC)} {
		f.Add(s, now.Unix())
	}
	f.Add("Fri, 31 Dec 9999 23:59:59 GMT", int64(math.MinInt64/2))
	f.Fuzz(func(t *testing.T, v string, nowUnix int64) {
		d, ok := parseRetryAfter(v, time.Unix(nowUnix, 0))
		if d < 0 {
			t.Fatalf("parseRetryAfter(%q) = %v, negative", v, d)
		}
		if !ok && d != 0 {
			t.Fatalf("parseRetryAfter(%q) = %v, false; want 0 when not ok", v, d)
		}
	})
}

func TestRetryBackoff(t *testing.T) {
	const almostOne = 1 - 1.0/(1<<53)
	fixed := func(r float64) func() float64 { return func() float64 { return r } }
	tests := []struct {
		name   string
		n      int
		factor float64
		max    time.Duration
		rnd    float64
		want   time.Duration
	}{
		{"no jitter draw is zero", 1, 0.5, 10 * time.Second, 0, 0},
		{"retry 1 ceiling", 1, 0.5, 10 * time.Second, almostOne, 500 * time.Millisecond},
		{"retry 2 ceiling", 2, 0.5, 10 * time.Second, almostOne, time.Second},
		{"retry 3 ceiling", 3, 0.5, 10 * time.Second, almostOne, 2 * time.Second},
		{"half of retry 3", 3, 0.5, 10 * time.Second, 0.5, time.Second},
		{"capped", 10, 0.5, 10 * time.Second, almostOne, 10 * time.Second},
		{"capped, huge n", 1 << 30, 0.5, 10 * time.Second, almostOne, 10 * time.Second},
		{"infinite factor is capped", 1, math.Inf(1), time.Second, 0.5, 500 * time.Millisecond},
		{"n 0", 0, 0.5, 10 * time.Second, 0.5, 0},
		{"n negative", -3, 0.5, 10 * time.Second, 0.5, 0},
		{"factor 0", 1, 0, 10 * time.Second, 0.5, 0},
		{"factor negative", 1, -1, 10 * time.Second, 0.5, 0},
		{"factor NaN", 1, math.NaN(), 10 * time.Second, 0.5, 0},
		{"max 0", 1, 0.5, 0, 0.5, 0},
		{"max negative", 1, 0.5, -time.Second, 0.5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := backoff(tt.n, tt.factor, tt.max, fixed(tt.rnd))
			// The ceiling draws lose a nanosecond or so to rounding.
			if diff := got - tt.want; diff < -time.Microsecond || diff > 0 {
				t.Errorf("backoff(%d, %v, %v, %v) = %v, want %v (to 1µs below)", tt.n, tt.factor, tt.max, tt.rnd, got, tt.want)
			}
		})
	}
}

func FuzzBackoff(f *testing.F) {
	f.Add(1, 0.5, int64(10*time.Second), uint64(0))
	f.Add(3, 0.5, int64(10*time.Second), uint64(math.MaxUint64))
	f.Add(64, 1e300, int64(math.MaxInt64), uint64(math.MaxUint64))
	f.Add(1, math.Inf(1), int64(time.Second), uint64(1<<63))
	f.Add(1<<40, 1e-300, int64(1), uint64(12345))
	f.Add(-1, -0.5, int64(-1), uint64(1))
	f.Add(2, 4e9, int64(1<<62+513), uint64(math.MaxUint64))
	f.Fuzz(func(t *testing.T, n int, factor float64, maxNs int64, r uint64) {
		rnd := float64(r>>11) / (1 << 53) // [0, 1), as math/rand's Float64
		limit := time.Duration(maxNs)
		d := backoff(n, factor, limit, func() float64 { return rnd })
		if d < 0 {
			t.Fatalf("backoff(%d, %v, %v, %v) = %v, negative", n, factor, limit, rnd, d)
		}
		if d > max(limit, 0) {
			t.Fatalf("backoff(%d, %v, %v, %v) = %v, above the cap", n, factor, limit, rnd, d)
		}
	})
}

func TestRetryBudget(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0) // a whole second: buckets line up
	sec := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	// withdrawAll takes retries at at until the budget refuses, at most 10,000.
	withdrawAll := func(b *budget, at time.Time) int {
		n := 0
		for n < 10_000 && b.withdraw(at) {
			n++
		}
		return n
	}
	deposit := func(b *budget, at time.Time, n int) {
		for range n {
			b.deposit(at)
		}
	}

	t.Run("floor alone", func(t *testing.T) {
		b := &budget{perSecond: 10, start: t0}
		if got := withdrawAll(b, t0); got != 10 {
			t.Errorf("retries allowed in the first second = %d, want 10", got)
		}
		if got := b.refused.Load(); got != 1 {
			t.Errorf("refused = %d, want 1", got)
		}
		if got := b.retries.Load(); got != 10 {
			t.Errorf("retries = %d, want 10", got)
		}
	})
	t.Run("floor accrues per second", func(t *testing.T) {
		b := &budget{perSecond: 10, start: t0}
		if got := withdrawAll(b, sec(4)); got != 50 {
			t.Errorf("retries allowed at 4s = %d, want 50 (5 seconds of floor)", got)
		}
	})
	t.Run("floor capped at the window", func(t *testing.T) {
		b := &budget{perSecond: 10, start: t0}
		if got := withdrawAll(b, sec(3600)); got != 100 {
			t.Errorf("retries allowed after an hour = %d, want 100 (10 seconds of floor)", got)
		}
	})
	t.Run("percent alone", func(t *testing.T) {
		b := &budget{percent: 20, start: t0}
		deposit(b, t0, 100)
		if got := withdrawAll(b, t0); got != 20 {
			t.Errorf("retries allowed for 100 requests at 20%% = %d, want 20", got)
		}
	})
	t.Run("percent plus floor", func(t *testing.T) {
		b := &budget{percent: 20, perSecond: 10, start: t0}
		deposit(b, t0, 100)
		if got := withdrawAll(b, t0); got != 30 {
			t.Errorf("retries allowed = %d, want 20 + 10", got)
		}
		// The floor accrues continuously: half a second later, 5 more.
		if got := withdrawAll(b, sec(0.5)); got != 5 {
			t.Errorf("retries allowed half a second later = %d, want 5", got)
		}
	})
	t.Run("zero budget refuses", func(t *testing.T) {
		b := &budget{start: t0}
		deposit(b, t0, 1000)
		if b.withdraw(t0) {
			t.Error("a budget of 0% and 0/s allowed a retry")
		}
	})
	t.Run("window slides", func(t *testing.T) {
		b := &budget{percent: 20, start: t0}
		deposit(b, t0, 100)
		if got := withdrawAll(b, t0); got != 20 {
			t.Fatalf("at 0s: %d retries allowed, want 20", got)
		}
		deposit(b, sec(5), 50)
		if got := withdrawAll(b, sec(5)); got != 10 {
			t.Errorf("at 5s, with 150 requests and 20 retries in the window: %d more allowed, want 10", got)
		}
		// At 10s the first second has left the window: 50 requests and 10
		// retries remain in it.
		if got := withdrawAll(b, sec(10)); got != 0 {
			t.Errorf("at 10s: %d more allowed, want 0", got)
		}
		deposit(b, sec(10), 100)
		if got := withdrawAll(b, sec(10)); got != 20 {
			t.Errorf("at 10s, with 150 requests and 10 retries in the window: %d more allowed, want 20", got)
		}
		// At 20s everything before has left the window.
		deposit(b, sec(20), 10)
		if got := withdrawAll(b, sec(20)); got != 2 {
			t.Errorf("at 20s, with 10 requests in the window: %d allowed, want 2", got)
		}
	})
}

// TestRetryBudgetConcurrent withdraws from many goroutines at one instant:
// the lock-free budget may overshoot by a few racing withdrawals, never
// by more than the number of goroutines.
func TestRetryBudgetConcurrent(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	b := &budget{percent: 20, perSecond: 10, start: t0}
	const workers = 8
	var granted atomic.Int64
	load(t, workers*1000, workers, func(int) error {
		b.deposit(t0)
		if b.withdraw(t0) {
			granted.Add(1)
		}
		return nil
	})
	want := int64(0.2*workers*1000) + 10
	if got := granted.Load(); got > want+workers || got < want-workers {
		t.Errorf("granted %d retries for %d requests, want %d (± %d)", got, workers*1000, want, workers)
	}
}

// TestRetryUnauthorizedRefreshesTokenOnce: a 401 to a token the client
// added invalidates the cached token and retries once with a fresh one; a
// second 401 is the answer.
func TestRetryUnauthorizedRefreshesTokenOnce(t *testing.T) {
	const good = "right-token"
	// source hands out the tokens in order, then repeats the last.
	source := func(tokens ...string) (*TokenCache, *atomic.Int64) {
		var calls atomic.Int64
		ts := TokenSourceFunc(func(context.Context) (Token, error) {
			i := min(int(calls.Add(1))-1, len(tokens)-1)
			return Token{Value: tokens[i]}, nil
		})
		return CachedTokenSource(ts, 0), &calls
	}
	do := func(t *testing.T, c *Client, url string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"question":"q"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("Do: %v", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	check := func(t *testing.T, srv *refserver.Server, calls *atomic.Int64, unauthorized, executions, fetches int64) {
		t.Helper()
		st := srv.Stats()
		if st.Unauthorized != unauthorized || st.Executions != executions || calls.Load() != fetches {
			t.Errorf("server saw %d unauthorized and %d executions, source called %d times; want %d, %d, %d",
				st.Unauthorized, st.Executions, calls.Load(), unauthorized, executions, fetches)
		}
	}

	t.Run("Do/refresh succeeds", func(t *testing.T) {
		srv := startServer(t, refserver.Options{Token: good})
		ts, calls := source("stale-token", good)
		c := newClient(t, srv, DefaultConfig(), WithTokenSource(ts))
		if resp := do(t, c, srv.URL()+"/answer"); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, want 200 after one refresh", resp.StatusCode)
		}
		check(t, srv, calls, 1, 1, 2)
		// The fresh token is cached: the next call needs no refresh.
		do(t, c, srv.URL()+"/answer")
		check(t, srv, calls, 1, 2, 2)
	})
	t.Run("Do/second 401 is returned", func(t *testing.T) {
		srv := startServer(t, refserver.Options{Token: good})
		ts, calls := source("wrong-1", "wrong-2", "wrong-3")
		c := newClient(t, srv, DefaultConfig(), WithTokenSource(ts))
		if resp := do(t, c, srv.URL()+"/answer"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
		check(t, srv, calls, 2, 0, 2)
	})
	t.Run("PostJSON/refresh succeeds", func(t *testing.T) {
		srv := startServer(t, refserver.Options{Token: good})
		ts, calls := source("stale-token", good)
		c := newClient(t, srv, DefaultConfig(), WithTokenSource(ts))
		if err := post(c, srv.URL()+"/answer"); err != nil {
			t.Fatalf("PostJSON: %v; want success after one token refresh", err)
		}
		check(t, srv, calls, 1, 1, 2)
	})
	t.Run("PostJSON/second 401 is a StatusError", func(t *testing.T) {
		srv := startServer(t, refserver.Options{Token: good})
		ts, calls := source("wrong-1", "wrong-2", "wrong-3")
		c := newClient(t, srv, DefaultConfig(), WithTokenSource(ts))
		err := post(c, srv.URL()+"/answer")
		var se *StatusError
		if !errors.As(err, &se) || se.StatusCode != http.StatusUnauthorized {
			t.Fatalf("got %v, want *StatusError 401", err)
		}
		if se.Attempts != 2 {
			t.Errorf("StatusError.Attempts = %d, want 2 (one token refresh)", se.Attempts)
		}
		check(t, srv, calls, 2, 0, 2)
	})
}
