package bench

import (
	"maps"
	"reflect"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/doctor"
)

// PoolSummary is warmpool.Client.Stats at the end of a run, before the
// client is closed, under Stats' own JSON names, with the reuse rate and the
// pool doctor's findings. Over a run's slices, counters add up; gauges are
// the last slice's, the peak the highest.
type PoolSummary struct {
	warmpool.Stats
	ReuseRate float64 `json:"reuse_rate"`
	// Findings are the pool doctor's (doctor.Diagnose) on each slice's
	// Stats; empty when the pool was healthy.
	Findings   []doctor.Finding `json:"findings"`
	httpClient map[string]any   // the client's effective settings, by YAML key
}

func newPoolSummary(c *warmpool.Client) *PoolSummary {
	st := c.Stats()
	return &PoolSummary{
		Stats:      st,
		ReuseRate:  st.ReuseRate(),
		Findings:   append([]doctor.Finding{}, doctor.Diagnose(st, c.Config())...),
		httpClient: HTTPClientKeys(c.Config()),
	}
}

// plus adds the next slice's summary to p. Either may be nil (not a
// warmpool client).
func (p *PoolSummary) plus(o *PoolSummary) *PoolSummary {
	if p == nil || o == nil {
		return o
	}
	s := &PoolSummary{
		Stats:      sumStats(p.Stats, o.Stats),
		httpClient: o.httpClient,
		Findings:   append(append([]doctor.Finding{}, p.Findings...), o.Findings...),
	}
	s.ReuseRate = s.HostStats.ReuseRate()
	return s
}

// sumStats is the Stats of two slices in turn, b the later.
func sumStats(a, b warmpool.Stats) warmpool.Stats {
	s := b
	s.HostStats = sumHostStats(a.HostStats, b.HostStats)
	s.Hosts = maps.Clone(a.Hosts)
	if s.Hosts == nil {
		s.Hosts = map[string]warmpool.HostStats{}
	}
	for k, h := range b.Hosts {
		s.Hosts[k] = sumHostStats(s.Hosts[k], h)
	}
	s.Calls += a.Calls
	s.CallsFailed += a.CallsFailed
	s.Retries += a.Retries
	s.BudgetRefusals += a.BudgetRefusals
	s.TokenFetches += a.TokenFetches
	s.TokenFetchFailures += a.TokenFetchFailures
	s.Hedges += a.Hedges
	s.HedgeWins += a.HedgeWins
	return s
}

// sumHostStats adds a's counters to b's; the gauges, the names, the
// learned idle timeout, the recent latencies and the concurrency limit are
// b's, the later's, and the peak the higher.
// TestSumHostStatsKnowsEveryField fails on a field of HostStats left out.
func sumHostStats(a, b warmpool.HostStats) warmpool.HostStats {
	s := b
	s.PeakInFlight = max(a.PeakInFlight, b.PeakInFlight)
	s.Ejections += a.Ejections
	s.Created += a.Created
	s.DialsAvoided += a.DialsAvoided
	s.Closed += a.Closed
	addCounts(&s.ClosedBy, a.ClosedBy)
	addCounts(&s.DialFailures, a.DialFailures)
	s.DialTime += a.DialTime
	s.TLSHandshakes += a.TLSHandshakes
	s.TLSHandshakeTime += a.TLSHandshakeTime
	s.Requests += a.Requests
	s.Reused += a.Reused
	s.PoolTimeouts += a.PoolTimeouts
	s.Waits += a.Waits
	s.WaitTime += a.WaitTime
	s.Failures += a.Failures
	s.LimitWaits += a.LimitWaits
	s.LimitWaitTime += a.LimitWaitTime
	s.Overloaded += a.Overloaded
	s.Throttled += a.Throttled
	s.CircuitOpens += a.CircuitOpens
	s.CircuitRejections += a.CircuitRejections
	s.DeadlineRejections += a.DeadlineRejections
	if len(a.FailuresByKind) > 0 {
		s.FailuresByKind = maps.Clone(a.FailuresByKind)
		for k, n := range b.FailuresByKind {
			s.FailuresByKind[k] += n
		}
	}
	return s
}

// addCounts adds each count of from to to: CloseReasons and DialFailures
// are flat tables of int64 counts, one field per entry of warmpool's table,
// so an entry added there is summed here too.
func addCounts[T warmpool.CloseReasons | warmpool.DialFailures](to *T, from T) {
	tv, fv := reflect.ValueOf(to).Elem(), reflect.ValueOf(from)
	for i := range tv.NumField() {
		tv.Field(i).SetInt(tv.Field(i).Int() + fv.Field(i).Int())
	}
}
