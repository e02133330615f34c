package warmpool

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// TestDeadlineShorterThanFastestAnswer: once the host's fastest recent
// answer took 50ms, a call with 10ms left fails at once with
// context.DeadlineExceeded, not sent.
func TestDeadlineShorterThanFastestAnswer(t *testing.T) {
	b := startBackend(t)
	b.delay.Store(int64(50 * time.Millisecond))
	c, err := New(Config{MaxRetries: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 3 {
		if err := get(c, b.URL); err != nil {
			t.Fatal(err)
		}
	}
	arrived := b.arrived.Load()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = c.DoJSON(ctx, http.MethodGet, b.URL, nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) || ErrorKind(err) != "timeout" {
		t.Fatalf("call with 10ms left: %v (kind %q), want context.DeadlineExceeded", err, ErrorKind(err))
	}
	if d := time.Since(start); d > 5*time.Millisecond+time.Second {
		t.Errorf("refused after %s, want at once (generous bound 1s)", d)
	}
	var re *RetryError
	if errors.As(err, &re) {
		t.Errorf("a call with too little time left was retried: %v", err)
	}
	if got := b.arrived.Load() - arrived; got != 0 {
		t.Errorf("%d requests reached the server, want none", got)
	}
	if st := c.Stats(); st.DeadlineRejections != 1 || st.LatencyMin < 50*time.Millisecond {
		t.Errorf("Stats: DeadlineRejections %d, LatencyMin %s; want 1, ≥ 50ms", st.DeadlineRejections, st.LatencyMin)
	}
	// With time enough it goes.
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.DoJSON(ctx, http.MethodGet, b.URL, nil, nil); err != nil {
		t.Errorf("call with 5s left: %v", err)
	}
}

func TestDeadlineHeader(t *testing.T) {
	b := startBackend(t)
	for _, tc := range []struct{ name, header, unit string }{
		{"milliseconds", "X-Request-Deadline", ""},
		{"grpc", "grpc-timeout", "m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(Config{}, WithDeadlineHeader(tc.header))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.URL, nil)
			req.Header.Set("X-Mine", "kept")
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			drainAndClose(resp.Body)
			h := *b.lastHdr.Load()
			v := h.Get(tc.header)
			ms, err := strconv.Atoi(v[:len(v)-len(tc.unit)])
			if err != nil || ms <= 0 || ms > 2000 || v[len(v)-len(tc.unit):] != tc.unit {
				t.Errorf("%s: %q, want the milliseconds left of 2s%s", tc.header, v, tc.unit)
			}
			if h.Get("X-Mine") != "kept" || req.Header.Get(tc.header) != "" {
				t.Errorf("the caller's header: sent %q, left %q on the request; want kept, and the request unchanged", h.Get("X-Mine"), req.Header.Get(tc.header))
			}
		})
	}
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := get(c, b.URL); err != nil {
		t.Fatal(err)
	}
	if v := b.lastHdr.Load().Get("X-Request-Deadline"); v != "" {
		t.Errorf("without the option the request carried a deadline: %q", v)
	}
}

// TestThrottleDuringOutage: while the backend answers 503 to everything,
// client-side throttling (on with the concurrency limit) sends fewer and
// fewer calls; once it answers again, calls go through again.
func TestThrottleDuringOutage(t *testing.T) {
	b := startBackend(t)
	b.status.Store(http.StatusServiceUnavailable)
	c, err := New(Config{ConcurrencyLimit: "adaptive", MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const calls = 1000
	var throttled int
	for range calls {
		err := get(c, b.URL)
		var oe *OverloadError
		if errors.As(err, &oe) && oe.Throttled {
			throttled++
		}
	}
	sent := b.arrived.Load()
	t.Logf("outage: %d calls, %d sent, %d throttled", calls, sent, throttled)
	if sent > calls/10 || int64(throttled)+sent != calls {
		t.Errorf("during a total outage %d of %d calls reached the backend (%d throttled); want at most 10 %%, the rest throttled", sent, calls, throttled)
	}
	b.status.Store(0)
	// Every call sent now succeeds and outweighs a refusal: the throttle
	// lets go within a few hundred calls (well under a second at 1,000
	// calls/s).
	var last []bool
	for n := 1; n <= 1000; n++ {
		last = append(last, get(c, b.URL) == nil)
		if len(last) > 50 {
			last = last[1:]
		}
		ok := 0
		for _, v := range last {
			if v {
				ok++
			}
		}
		if ok >= 45 {
			t.Logf("after recovery, 45 of the last 50 calls succeeded by call %d", n)
			if n > 600 {
				t.Errorf("the throttle took %d calls to let go after recovery, want under 600", n)
			}
			return
		}
	}
	t.Errorf("1000 calls after recovery and the throttle still refuses most")
}
