package warmpool

import (
	"cmp"
	"slices"
	"time"
)

// startJanitor starts the client's one background goroutine. Each tick it
// trims idle connections beyond recent demand, retires idle connections past
// max_connection_age, logs stats every stats_log_interval, and starts the
// resolutions of host names that are due (or asked for, when woken) and
// sweeps draining endpoints. It exits when Close closes c.done, after the
// resolutions under way.
func (c *Client) startJanitor() {
	// Tick ten times per keepalive_expiry (within 10ms..1s), faster if a
	// connection age or the stats interval needs it.
	tick := min(max(c.cfg.KeepaliveExpiry/10, 10*time.Millisecond), time.Second)
	if age := c.cfg.MaxConnectionAge; age > 0 {
		tick = min(tick, max(age/10, 10*time.Millisecond))
	}
	if iv := c.cfg.StatsLogInterval; iv > 0 {
		tick = min(tick, iv)
	}
	if iv := c.cfg.ResolveInterval; iv > 0 {
		tick = min(tick, max(iv/5, 10*time.Millisecond))
	}
	slots := max(int(demandWindow(c.cfg.KeepaliveExpiry)/tick), 1)

	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		t := time.NewTicker(tick)
		defer t.Stop()
		var logger *statsLogger
		if c.cfg.StatsLogInterval > 0 {
			logger = &statsLogger{c: c, every: c.cfg.StatsLogInterval, last: c.now()}
		}
		for {
			select {
			case <-c.done:
				c.routes.stop()
				return
			case <-c.routes.wake:
				c.routes.tick(c.now())
			case <-t.C:
				now := c.now()
				c.routes.tick(now)
				c.dialer.trimIdle(c.cfg.MaxKeepaliveConnections, slots)
				if c.cfg.MaxConnectionAge > 0 {
					c.dialer.retireIdle(now)
				}
				if logger != nil {
					logger.maybeLog(now)
				}
				c.history.sample(now)
			}
		}
	}()
}

// demandWindow is how far back trimIdle looks for demand: a tenth of
// keepalive_expiry, at least a second, at most keepalive_expiry.
//
// A window of keepalive_expiry itself made the trim a no-op: the connections
// it would close are exactly those net/http's idle timer closes at the same
// moment (TestIdleRetentionTrimsAfterBurst: 0 trims, 23 idle expiries).
func demandWindow(expiry time.Duration) time.Duration {
	return min(max(expiry/10, time.Second), expiry)
}

// trimIdle makes idle retention follow demand: it keeps as many idle
// connections as requests were in flight at the peak of the last demand
// window, at least keep, and closes the rest, longest idle first. slots is
// how many ticks make up the window.
//
// net/http's MaxIdleConnsPerHost is set to max_connections, so that a steady
// load at any concurrency up to it never closes a connection only to dial
// it again (with MaxIdleConnsPerHost = max_keepalive_connections, 32 callers
// against the default 20 do: TestDefaultConfigSteadyLoadDoesNotChurn). This
// trim is what makes max_keepalive_connections the number of idle
// connections kept once a burst is over: within seconds, rather than after
// keepalive_expiry (TestIdleRetentionTrimsSoonAfterBurst).
func (d *dialer) trimIdle(keep, slots int) {
	for _, h := range d.hostList() {
		h.demand = append(h.demand, h.peak.Swap(h.inflight.Load()))
		if len(h.demand) > slots {
			h.demand = h.demand[len(h.demand)-slots:]
		}
		allowed := int64(keep)
		for _, p := range h.demand {
			allowed = max(allowed, p)
		}
		var idle []*conn
		for _, c := range h.connList() {
			if c.inUse.Load() == 0 {
				idle = append(idle, c)
			}
		}
		excess := int64(len(idle)) - allowed
		if excess <= 0 {
			continue
		}
		slices.SortFunc(idle, func(a, b *conn) int { return cmp.Compare(a.idleSince.Load(), b.idleSince.Load()) })
		for _, c := range idle[:excess] {
			if c.claim() {
				c.closeWith(closeTrim)
			}
		}
	}
}
