package warmpool

import (
	"context"
	"log/slog"
	"time"
)

// statsLogger writes the periodic "HTTP client stats" line.
type statsLogger struct {
	c     *Client
	every time.Duration
	last  time.Time
	prev  Stats
}

// maybeLog logs a line if one is due at now: every interval, give or take a
// tenth, as the ticks that call it may come a hair early.
func (l *statsLogger) maybeLog(now time.Time) {
	if now.Sub(l.last) < l.every-l.every/10 {
		return
	}
	l.last = now
	s := l.c.Stats()
	l.c.log.LogAttrs(context.Background(), slog.LevelInfo, "HTTP client stats", statsAttrs(s, l.prev)...)
	l.prev = s
}

// statsAttrs are the main figures of s and the change since prev.
func statsAttrs(s, prev Stats) []slog.Attr {
	reqs := s.Requests - prev.Requests
	reused := s.Reused - prev.Reused
	rate := 0.0
	if reqs > 0 {
		rate = float64(reused) / float64(reqs)
	}
	return []slog.Attr{
		slog.Int64("active", s.InUse),
		slog.Int64("idle", s.Idle),
		slog.Int64("open", s.Open),
		slog.Int64("in_flight", s.InFlight),
		slog.Int64("requests", reqs),
		slog.Float64("reuse_rate", round3(rate)),
		slog.Int64("created", s.Created-prev.Created),
		slog.Int64("closed", s.Closed-prev.Closed),
		slog.Int64("waits", s.Waits-prev.Waits),
		slog.Int64("pool_timeouts", s.PoolTimeouts-prev.PoolTimeouts),
		slog.Int64("retries", s.Retries-prev.Retries),
		slog.Int64("dial_failures", s.DialFailures.Total()-prev.DialFailures.Total()),
		slog.Int64("rejected", s.Overloaded+s.Throttled+s.CircuitRejections+s.DeadlineRejections-
			(prev.Overloaded+prev.Throttled+prev.CircuitRejections+prev.DeadlineRejections)),
		slog.Int64("requests_total", s.Requests),
		slog.Int64("created_total", s.Created),
	}
}

func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }

// LogStats logs one "HTTP client stats" line at Info every interval, with
// the pool's gauges and what changed since the previous line, until ctx ends
// or the client closes. It blocks; run it in a goroutine you own:
//
//	go client.LogStats(ctx, time.Minute)
//
// The stats_log_interval setting does the same from a goroutine the client
// owns.
func (c *Client) LogStats(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	l := &statsLogger{c: c, every: interval, last: time.Now()}
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.done:
			return
		case now := <-t.C:
			l.maybeLog(now)
		}
	}
}
