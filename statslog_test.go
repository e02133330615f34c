package warmpool

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/warmpool/warmpool/internal/refserver"
)

// logBuffer collects JSON log lines written from other goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// statsLines parses the "HTTP client stats" lines written so far.
func (b *logBuffer) statsLines(t testing.TB) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for line := range strings.Lines(b.buf.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		if m["msg"] == "HTTP client stats" {
			out = append(out, m)
		}
	}
	return out
}

func (b *logBuffer) logger() *slog.Logger { return slog.New(slog.NewJSONHandler(b, nil)) }

// statsKeys are the attributes of every stats line.
var statsKeys = []string{"active", "closed", "created", "created_total", "dial_failures", "idle", "in_flight",
	"level", "msg", "open", "pool_timeouts", "rejected", "requests", "requests_total", "retries", "reuse_rate", "time", "waits"}

func TestLogStatsLineAndDeltas(t *testing.T) {
	srv := startServer(t, refserver.Options{})
	var buf logBuffer
	cfg := DefaultConfig()
	cfg.MaxRetries = -1
	c := newClient(t, srv, cfg, WithLogger(buf.logger()))
	callEvery(t, 10, 0, false, func() error { return post(c, srv.URL()+"/answer") })

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.LogStats(ctx, 20*time.Millisecond) }()
	defer func() { cancel(); <-done }()

	waitFor(t, "the first stats line", 2*time.Second, func() bool { return len(buf.statsLines(t)) > 0 })
	first := buf.statsLines(t)[0]
	if keys := slices.Sorted(maps.Keys(first)); !slices.Equal(keys, statsKeys) {
		t.Errorf("stats line keys %v, want %v", keys, statsKeys)
	}
	want := map[string]any{"level": "INFO", "active": 0.0, "idle": 1.0, "open": 1.0, "in_flight": 0.0,
		"requests": 10.0, "reuse_rate": 0.9, "created": 1.0, "closed": 0.0, "waits": 0.0, "pool_timeouts": 0.0,
		"retries": 0.0, "dial_failures": 0.0, "requests_total": 10.0, "created_total": 1.0}
	for k, v := range want {
		if first[k] != v {
			t.Errorf("first line: %s = %v, want %v (line %v)", k, first[k], v, first)
		}
	}

	// Five more requests on the warm connection, and a refused dial.
	callEvery(t, 5, 0, false, func() error { return post(c, srv.URL()+"/answer") })
	if err := post(c, "http://"+closedAddr(t)+"/answer"); err == nil {
		t.Fatal("POST to a closed port succeeded")
	}
	waitFor(t, "lines with the new requests and the dial failure", 2*time.Second, func() bool {
		l := buf.statsLines(t)
		return l[len(l)-1]["requests_total"] == 15.0 && sumAttr(l, "dial_failures") == 1
	})
	lines := buf.statsLines(t)
	var requests, created, dialFailures float64
	for i, l := range lines[1:] {
		prev := lines[i]
		if l["requests"] != l["requests_total"].(float64)-prev["requests_total"].(float64) ||
			l["created"] != l["created_total"].(float64)-prev["created_total"].(float64) {
			t.Errorf("line %d: deltas requests %v, created %v do not match the totals %v→%v, %v→%v", i+1,
				l["requests"], l["created"], prev["requests_total"], l["requests_total"], prev["created_total"], l["created_total"])
		}
		if l["requests"].(float64) > 0 && l["reuse_rate"] != 1.0 {
			t.Errorf("line %d: reuse_rate %v for requests on a warm connection, want 1", i+1, l["reuse_rate"])
		}
		requests += l["requests"].(float64)
		created += l["created"].(float64)
		dialFailures += l["dial_failures"].(float64)
	}
	if requests != 5 || created != 0 || dialFailures != 1 {
		t.Errorf("after the first line: %v requests, %v created, %v dial failures; want 5, 0, 1", requests, created, dialFailures)
	}
}

func sumAttr(lines []map[string]any, key string) float64 {
	var n float64
	for _, l := range lines {
		n += l[key].(float64)
	}
	return n
}

func TestLogStatsStops(t *testing.T) {
	srv := startServer(t, refserver.Options{})
	for _, tc := range []struct {
		name     string
		interval time.Duration
		stop     func(c *Client, cancel context.CancelFunc)
	}{
		{"context ends", 5 * time.Millisecond, func(_ *Client, cancel context.CancelFunc) { cancel() }},
		{"client closes", 5 * time.Millisecond, func(c *Client, _ context.CancelFunc) { c.Close() }},
		{"zero interval", 0, func(*Client, context.CancelFunc) {}},
	} {
		// In a synctest bubble (the server, outside it, is never dialed):
		// the interval passes on the fake clock and synctest.Wait waits for
		// the line.
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var buf logBuffer
				c := newClient(t, srv, DefaultConfig(), WithLogger(buf.logger()))
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				done := make(chan struct{})
				go func() { defer close(done); c.LogStats(ctx, tc.interval) }()
				if tc.interval > 0 {
					time.Sleep(tc.interval)
					synctest.Wait()
					if len(buf.statsLines(t)) == 0 {
						t.Fatalf("no stats line after one interval (%s), want one", tc.interval)
					}
				}
				tc.stop(c, cancel)
				select {
				case <-done:
				case <-time.After(2 * time.Second):
					t.Fatal("LogStats did not return")
				}
				if tc.interval == 0 && len(buf.statsLines(t)) > 0 {
					t.Error("LogStats with a zero interval logged")
				}
			})
		})
	}
}

// TestStatsLogIntervalSetting: stats_log_interval logs from the client's own
// goroutine, which Close stops (goleak checks that it exits).
func TestStatsLogIntervalSetting(t *testing.T) {
	srv := startServer(t, refserver.Options{})
	var buf logBuffer
	cfg := DefaultConfig()
	cfg.StatsLogInterval = 20 * time.Millisecond
	c := newClient(t, srv, cfg, WithLogger(buf.logger()))
	callEvery(t, 3, 0, false, func() error { return post(c, srv.URL()+"/answer") })
	waitFor(t, "a line with the 3 requests", 2*time.Second, func() bool {
		l := buf.statsLines(t)
		return len(l) > 0 && l[len(l)-1]["requests_total"] == 3.0
	})
	c.Close()
	n := len(buf.statsLines(t))
	time.Sleep(60 * time.Millisecond)
	if m := len(buf.statsLines(t)); m != n {
		t.Errorf("%d stats lines logged after Close", m-n)
	}
}
