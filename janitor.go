package warmpool

import "time"

// startJanitor starts the client's one background goroutine, when a setting
// needs it: retiring connections past max_connection_age and logging stats
// every stats_log_interval. It exits when Close closes c.done.
func (c *Client) startJanitor() {
	var tick time.Duration
	if age := c.cfg.MaxConnectionAge; age > 0 {
		tick = min(max(age/10, 10*time.Millisecond), time.Second)
	}
	if iv := c.cfg.StatsLogInterval; iv > 0 && (tick == 0 || iv < tick) {
		tick = iv
	}
	if tick == 0 {
		return
	}
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
