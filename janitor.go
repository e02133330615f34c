package warmpool

import "time"

// startJanitor starts the client's one background goroutine. Each tick it
// trims idle connections beyond recent demand, retires connections past
// max_connection_age, and logs stats every stats_log_interval. It exits
// when Close closes c.done.
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
	slots := max(int(c.cfg.KeepaliveExpiry/tick), 1)

	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		t := time.NewTicker(tick)
		defer t.Stop()
		var logger *statsLogger
		if c.cfg.StatsLogInterval > 0 {
			logger = &statsLogger{c: c, every: c.cfg.StatsLogInterval, last: time.Now()}
		}
		for {
			select {
			case <-c.done:
				return
			case now := <-t.C:
				c.dialer.trimIdle(c.cfg.MaxKeepaliveConnections, slots)
				if c.cfg.MaxConnectionAge > 0 {
					c.dialer.retireIdle(now)
				}
				if logger != nil {
					logger.maybeLog(now)
				}
			}
		}
	}()
}
