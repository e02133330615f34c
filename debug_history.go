package warmpool

import (
	"sync"
	"time"
)

// The pool page (DebugHandler) charts the last five minutes of a client's
// pool. The client keeps that history itself, so the page needs no goroutine
// of its own and shows what happened before anyone opened it: every
// historyInterval its janitor takes one Stats snapshot and stores, per host
// and in total, the gauges and what the counters gained since the last
// sample, in fixed rings. Latencies are Stats' own (the pools' recent
// latency, the one measure the limit, hedging and the balancer read too).

const (
	historyInterval = 5 * time.Second
	historySlots    = 60 // five minutes of samples
	historyMaxHosts = 64 // hosts with a history of their own; the total counts every host
)

// historyKinds are the ErrorKinds the failure charts count, in order.
var historyKinds = ErrorKinds()

// Indices of the figures a hostRing keeps per sample.
const (
	hOpen = iota // gauges, as sampled
	hInUse
	hDialing
	hRequests // counters, the gain over the interval
	hReused
	hCreated
	hClosed
	hDialFailures
	hP50 // latency of recent successes (Stats.LatencyP50), µs
	hP99
	hFigures
)

// debugHistory is a client's pool history for the pool page.
type debugHistory struct {
	c *Client

	mu    sync.Mutex
	next  time.Time           // when the next sample is due
	n     int                 // samples taken; the newest is in slot (n-1) % historySlots
	end   [historySlots]int64 // when each sample's interval ended, unix ms
	dur   [historySlots]int64 // how long it was, ms
	total *hostRing
	hosts map[string]*hostRing
	prev  Stats // at the last sample
	prevT time.Time
	pt    *historyPoint // sample's scratch point
}

// hostRing is the history of one host, or of the total.
type hostRing struct {
	last  int // the sample at which the host was last in Stats
	fig   [hFigures][historySlots]int64
	kinds []int64 // failed attempts gained per slot and kind: [slot*len(historyKinds)+kind]
}

func newHostRing() *hostRing {
	return &hostRing{kinds: make([]int64, historySlots*len(historyKinds))}
}

// historyPoint is one host's figures for one interval.
type historyPoint struct {
	fig   [hFigures]int64
	kinds []int64 // failed attempts gained, by historyKinds index
}

func newHistoryPoint() *historyPoint { return &historyPoint{kinds: make([]int64, len(historyKinds))} }

// newDebugHistory starts the history of c, which New calls once.
func newDebugHistory(c *Client) *debugHistory {
	h := &debugHistory{c: c, total: newHostRing(), hosts: make(map[string]*hostRing), prevT: c.now()}
	h.next = h.prevT.Truncate(historyInterval).Add(historyInterval)
	return h
}

// sample takes a sample when one is due. The janitor calls it every tick
// (at most a second apart); samples fall on multiples of historyInterval.
func (h *debugHistory) sample(now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if now.Before(h.next) {
		return
	}
	h.next = now.Truncate(historyInterval).Add(historyInterval)
	st := h.c.Stats()
	if h.pt == nil {
		h.pt = newHistoryPoint()
	}
	slot := h.n % historySlots
	h.end[slot], h.dur[slot] = now.UnixMilli(), now.Sub(h.prevT).Milliseconds()
	for name, cur := range st.Hosts {
		r := h.hosts[name]
		if r == nil && len(h.hosts) < historyMaxHosts {
			r = newHostRing()
			h.hosts[name] = r
		}
		if r != nil {
			prev := h.prev.Hosts[name]
			h.pt.set(&cur, &prev)
			r.store(slot, h.n, h.pt)
		}
	}
	h.pt.set(&st.HostStats, &h.prev.HostStats)
	h.total.store(slot, h.n, h.pt)
	for name, r := range h.hosts {
		if r.last != h.n {
			r.clear(slot)
			if h.n-r.last >= historySlots {
				delete(h.hosts, name) // gone for the whole window
			}
		}
	}
	h.n++
	h.prev, h.prevT = st, now
}

// set makes p the gauges of cur (its recent latency among them) and what
// its counters gained over prev.
func (p *historyPoint) set(cur, prev *HostStats) {
	f := &p.fig
	f[hOpen], f[hInUse], f[hDialing] = cur.Open, cur.InUse, cur.Dialing
	f[hRequests] = max(cur.Requests-prev.Requests, 0)
	f[hReused] = max(cur.Reused-prev.Reused, 0)
	f[hCreated] = max(cur.Created-prev.Created, 0)
	f[hClosed] = max(cur.Closed-prev.Closed, 0)
	f[hDialFailures] = max(cur.DialFailures.Total()-prev.DialFailures.Total(), 0)
	f[hP50], f[hP99] = cur.LatencyP50.Microseconds(), cur.LatencyP99.Microseconds()
	for k, kind := range historyKinds {
		p.kinds[k] = max(cur.FailuresByKind[kind]-prev.FailuresByKind[kind], 0)
	}
}

// store puts p in slot, as sample n.
func (r *hostRing) store(slot, n int, p *historyPoint) {
	r.last = n
	for f, v := range p.fig {
		r.fig[f][slot] = v
	}
	copy(r.kinds[slot*len(historyKinds):], p.kinds)
}

// clear zeroes slot, for a host absent from a sample.
func (r *hostRing) clear(slot int) {
	for i := range r.fig {
		r.fig[i][slot] = 0
	}
	clear(r.kinds[slot*len(historyKinds) : (slot+1)*len(historyKinds)])
}

// debugHistoryView is the history as the pool page and its stats.json show
// it: one point per sample, oldest first, and a last one for the interval
// in progress. Counters are what they gained in each interval; rates are
// the gain divided by the interval's length (DurMS).
type debugHistoryView struct {
	IntervalMS int64                  `json:"interval_ms"` // the sampling interval
	EndMS      []int64                `json:"end_ms"`      // when each point's interval ended, unix ms (the last: now)
	DurMS      []int64                `json:"dur_ms"`      // each point's interval, ms
	Total      debugSeries            `json:"total"`
	Hosts      map[string]debugSeries `json:"hosts"` // by Stats.Hosts key; at most 64 hosts
}

// debugSeries is the history of one host, or of the total.
type debugSeries struct {
	Open         []int64 `json:"open"`
	InUse        []int64 `json:"in_use"`
	Dialing      []int64 `json:"dialing"`
	Requests     []int64 `json:"requests"`
	Reused       []int64 `json:"reused"`
	Created      []int64 `json:"created"`
	Closed       []int64 `json:"closed"`
	DialFailures []int64 `json:"dial_failures"`
	P50us        []int64 `json:"p50_us"` // Stats.LatencyP50 then: recent successes; 0 before 20 of them
	P99us        []int64 `json:"p99_us"`
	// Failures are failed attempts by ErrorKind, only for kinds that
	// failed within the window.
	Failures map[string][]int64 `json:"failures,omitempty"`
}

// view returns the history up to now; st is the Stats of now, which gives
// the point of the interval in progress.
func (h *debugHistory) view(now time.Time, st *Stats) debugHistoryView {
	h.mu.Lock()
	defer h.mu.Unlock()
	count := min(h.n, historySlots)
	v := debugHistoryView{
		IntervalMS: historyInterval.Milliseconds(),
		EndMS:      make([]int64, count+1),
		DurMS:      make([]int64, count+1),
		Hosts:      make(map[string]debugSeries, min(len(st.Hosts), historyMaxHosts)),
	}
	for i := range count {
		slot := (h.n - count + i) % historySlots
		v.EndMS[i], v.DurMS[i] = h.end[slot], h.dur[slot]
	}
	v.EndMS[count], v.DurMS[count] = now.UnixMilli(), max(now.Sub(h.prevT).Milliseconds(), 0)

	live := newHistoryPoint()
	for name, cur := range st.Hosts {
		r := h.hosts[name]
		if r == nil && len(v.Hosts) >= historyMaxHosts {
			continue
		}
		prev := h.prev.Hosts[name]
		live.set(&cur, &prev)
		v.Hosts[name] = h.series(r, live, count)
	}
	live.set(&st.HostStats, &h.prev.HostStats)
	v.Total = h.series(h.total, live, count)
	return v
}

// series lays out the last count samples of r (nil: a host new since the
// last sample, zeros), oldest first, then the live point.
func (h *debugHistory) series(r *hostRing, live *historyPoint, count int) debugSeries {
	width := count + 1
	buf := make([]int64, hFigures*width)
	var cols [hFigures][]int64
	for f := range cols {
		cols[f] = buf[f*width : (f+1)*width : (f+1)*width]
		if r != nil {
			for i := range count {
				cols[f][i] = r.fig[f][(h.n-count+i)%historySlots]
			}
		}
		cols[f][count] = live.fig[f]
	}
	s := debugSeries{
		Open: cols[hOpen], InUse: cols[hInUse], Dialing: cols[hDialing],
		Requests: cols[hRequests], Reused: cols[hReused], Created: cols[hCreated], Closed: cols[hClosed],
		DialFailures: cols[hDialFailures], P50us: cols[hP50], P99us: cols[hP99],
	}
	nk := len(historyKinds)
	for k, kind := range historyKinds {
		var col []int64
		for i := range width {
			n := live.kinds[k]
			if i < count {
				n = 0
				if r != nil {
					n = r.kinds[((h.n-count+i)%historySlots)*nk+k]
				}
			}
			if n != 0 && col == nil {
				col = make([]int64, width)
			}
			if col != nil {
				col[i] = n
			}
		}
		if col != nil {
			if s.Failures == nil {
				s.Failures = make(map[string][]int64)
			}
			s.Failures[kind] = col
		}
	}
	return s
}
