package warmpool

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Hedged requests, after "The Tail at Scale" (Dean and Barroso), Finagle's
// backup requests and gRPC's hedging policy (gRFC A6): an idempotent request
// that has not answered within hedge_after is sent once more, to another
// endpoint where the name has several (else on another connection), and the
// first answer wins; the other attempt is cancelled. A few per cent more
// requests cut the tail that one slow replica or one slow connection makes.
//
// Hedges are bounded three ways: at most hedge_max_extra_percent of the
// requests of the last 10 s, and each is withdrawn from the retry budget as
// a retry is (so together they cannot multiply the load on a failing
// backend); and none is sent while the endpoint looks overloaded (at its
// concurrency limit, shedding load, or throttled), where another request
// would only deepen the queue.
type hedger struct {
	delay time.Duration // a fixed hedge_after; 0 with q
	q     float64       // a percentile of hedge_after, such as 0.95; 0 with delay
	pct   float64       // hedge_max_extra_percent
	win   window        // hedges (b); the requests are the retry budget's
	sent  atomic.Int64
	wins  atomic.Int64
}

// parseHedgeAfter reads hedge_after: a percentile ("p95") or a duration
// (seconds or a Go duration), stored as the percentile or as a Go duration.
func parseHedgeAfter(s string) (string, error) {
	if strings.HasPrefix(s, "p") {
		return s, nil // hedgeDelay checks it
	}
	d, err := parseConfigDuration(s)
	if err != nil {
		return "", err
	}
	return d.String(), nil
}

// hedgeDelay reads a hedge_after value: "" (off), a percentile or a
// duration above 0.
func hedgeDelay(v string) (d time.Duration, q float64, err error) {
	switch {
	case v == "":
		return 0, 0, nil
	case strings.HasPrefix(v, "p"):
		q, err = strconv.ParseFloat(v[1:], 64)
		if err != nil || q < 50 || q > 99.9 {
			return 0, 0, fmt.Errorf("hedge_after %q: want a percentile from p50 to p99.9", v)
		}
		return 0, q / 100, nil
	}
	d, err = time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, 0, fmt.Errorf("hedge_after %q: want a duration above 0", v)
	}
	return d, 0, nil
}

func newHedger(cfg Config) *hedger {
	d, q, err := hedgeDelay(cfg.HedgeAfter)
	if err != nil || d == 0 && q == 0 {
		return nil
	}
	return &hedger{delay: d, q: q, pct: cfg.HedgeMaxExtraPercent}
}

// after is the hedge delay for an attempt at one of pools: the fixed delay,
// or the percentile of their merged recent latency (0, no hedge, before
// there are enough samples).
func (h *hedger) after(pools []*pool, now time.Time) time.Duration {
	if h.delay > 0 {
		return h.delay
	}
	var counts [numLatencyBuckets]int64
	var total int64
	for _, p := range pools {
		total += p.health.lat.counts(now, &counts)
	}
	if d := percentile(&counts, total, h.q); d > 0 {
		return max(d, minHedgeDelay)
	}
	return 0
}

// minHedgeDelay is the shortest hedge delay a percentile gives: below it the
// timer's resolution and the client's own work before the request is sent
// weigh more than the server's latency the percentile measured.
const minHedgeDelay = time.Millisecond

// allow reports whether a hedge may go now, and withdraws it from the cap
// and the retry budget if so.
func (h *hedger) allow(c *Client, now time.Time) bool {
	_, hedges := h.win.sums(now, budgetWindow)
	if float64(hedges+1) > h.pct/100*float64(c.budget.requests(now)) || !c.budget.take(now) {
		return false
	}
	h.win.add(now, 0, 1)
	h.sent.Add(1)
	return true
}

// hedged is one attempt of a hedged pair, as it ended.
type hedged struct {
	resp     *http.Response
	injected bool
	ep       *endpoint
	err      error
	hedge    bool // the second attempt
}

// race sends req, an idempotent request with a replayable body, through
// rt to p (ep), and once more after delay if no answer came by then; it
// returns the first answer, or the last error if neither answered.
func (h *hedger) race(rt *roundTripper, req *http.Request, p *pool, ep *endpoint, delay time.Duration) (*http.Response, bool, *endpoint, error) {
	c := rt.c
	results := make(chan hedged, 2)
	start := func(req *http.Request, p *pool, ep *endpoint, hedge bool) context.CancelFunc {
		ctx, cancel := context.WithCancel(req.Context())
		go func() {
			resp, injected, err := rt.send(req.WithContext(ctx), p, ep, cancel)
			results <- hedged{resp, injected, ep, err, hedge}
		}()
		return cancel
	}
	cancels := []context.CancelFunc{start(req, p, ep, false)}
	t := time.NewTimer(delay)
	defer t.Stop()
	var last hedged
	for pending := 1; pending > 0; {
		select {
		case r := <-results:
			pending--
			if r.err != nil {
				last = r
				continue
			}
			if r.hedge {
				h.wins.Add(1)
			}
			dropLosers(cancels, pending, results, r)
			return r.resp, r.injected, r.ep, nil
		case <-t.C:
			now := c.now()
			if len(cancels) > 1 || c.closing.Load() || p.busy(now) {
				continue // hedged already, or p is overloaded: a hedge would deepen its queue
			}
			hp, hep := c.routes.target(req, dialAddr(req.URL), ep) // another endpoint, if there is one
			if hp.busy(now) {
				continue
			}
			if hreq, err := rewind(req, 2); err == nil && h.allow(c, now) {
				cancels = append(cancels, start(hreq, hp, hep, true))
				pending++
			}
		}
	}
	for _, cancel := range cancels {
		cancel()
	}
	return nil, last.injected, last.ep, last.err
}

// dropLosers cancels the attempts other than the winner w, and closes the
// answers of those still pending as they arrive, on a goroutine that ends
// once they have (their cancellation makes that prompt).
func dropLosers(cancels []context.CancelFunc, pending int, results <-chan hedged, w hedged) {
	for i, cancel := range cancels {
		if hedge := i == 1; hedge != w.hedge {
			cancel()
		}
	}
	if pending == 0 {
		return
	}
	go func() {
		for range pending {
			if r := <-results; r.resp != nil {
				drainAndClose(r.resp.Body)
			}
		}
	}()
}

// hedgeable reports whether req may be hedged: hedging is on, and req is
// idempotent with a body that can be sent again.
func (c *Client) hedgeable(req *http.Request) bool {
	return c.hedge != nil && isIdempotent(req) && replayable(req)
}
