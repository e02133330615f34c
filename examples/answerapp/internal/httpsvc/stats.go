package httpsvc

import (
	"context"
	"log/slog"
	"math"
	"time"

	"github.com/warmpool/warmpool"
)

// StatsLogger logs a client's "HTTP client stats" line every interval, as
// the brief's logging.info(f"HTTP client stats: active=…, idle=…") does,
// from a goroutine it owns, until Stop; Stop logs the final line.
type StatsLogger struct {
	log    *slog.Logger
	client *warmpool.Client
	cancel context.CancelFunc
	done   chan struct{}
}

// StartStatsLogger starts logging; interval 0 logs only the final line.
func StartStatsLogger(log *slog.Logger, client *warmpool.Client, interval time.Duration) *StatsLogger {
	ctx, cancel := context.WithCancel(context.Background())
	l := &StatsLogger{log: log, client: client, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		client.LogStats(ctx, interval) // returns at once for 0
	}()
	return l
}

// Stop ends the periodic lines and logs the final one: the totals of the
// client's life and its connections now (none open after Shutdown).
func (l *StatsLogger) Stop() {
	l.cancel()
	<-l.done
	st := l.client.Stats()
	l.log.Info("HTTP client stats", "final", true,
		"active", st.InUse, "idle", st.Idle, "open", st.Open,
		"requests_total", st.Requests, "reuse_rate", math.Round(st.ReuseRate()*1000)/1000,
		"created_total", st.Created, "closed_total", st.Closed, "failures_total", st.Failures)
}
