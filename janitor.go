package warmpool

import "time"

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
				for _, p := range c.pools.all() {
					p.trimIdle(c.cfg.MaxKeepaliveConnections, slots)
					if c.cfg.MaxConnectionAge > 0 {
						p.conns.retireIdle(now)
					}
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
