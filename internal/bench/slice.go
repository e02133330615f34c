package bench

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/warmpool/warmpool/internal/load"
)

// modeRun is what one mode measured over its slices so far: a run is
// s.Rounds slices, interleaved with the other modes' so that a change in the
// machine's background load falls on every mode alike.
type modeRun struct {
	res    *runResult
	cpu    cpuTime
	cpuOK  bool
	pool   *PoolSummary
	server serverFigures
	token  *tokenFigures // nil without a token mode
	note   string        // about the last slice, for the report; "" for none
}

// serverFigures are the server's connection counts over a run; nil when
// unknown.
type serverFigures struct {
	accepted, secondHalf, peak *int64
}

// runSlice runs one slice of mode, then closes its client and waits, at most
// s.settleTimeout, until the server has seen its connections close, so that
// the next slice starts from the same state.
func runSlice(ctx context.Context, s Settings, t *target, mode string, l load.Spec, baselineOpen int64) (*modeRun, error) {
	var tok *tokenFetcher
	if t.issuer != nil {
		tok = newTokenFetcher(t.issuer, t.audience)
	}
	c, err := newClient(mode, t, s, tok)
	if err != nil {
		return nil, err
	}
	runtime.GC() // the previous slice's garbage is not this one's cost
	peakKnown := t.stats.resetPeak()
	before, known := t.stats.snapshot(ctx)

	// Halfway through, note the server's count: what it accepts after that
	// is the steady state's churn, past the warm-up.
	midc := make(chan serverSnapshot, 1)
	midCtx, stopMid := context.WithCancel(ctx)
	go func() {
		defer close(midc)
		timer := time.NewTimer(l.Duration / 2)
		defer timer.Stop()
		select {
		case <-timer.C:
			if snap, ok := t.stats.snapshot(midCtx); ok {
				midc <- snap
			}
		case <-midCtx.Done():
		}
	}()

	var issuedBefore int64
	if t.issuer != nil {
		issuedBefore = t.issuer.fetchCount()
	}
	cpu := startCPU()
	res := runLoad(ctx, c, newTemplate(t, s.Body, !c.setsAuth()), l)
	used, cpuOK := cpu.stop()
	stopMid()
	mid, midOK := <-midc

	after, known2 := t.stats.snapshot(ctx)
	m := &modeRun{res: res, cpu: used, cpuOK: cpuOK, pool: c.pool()}
	c.close()
	if tok != nil {
		calls, spent := tok.spent()
		m.token = &tokenFigures{issued: t.issuer.fetchCount() - issuedBefore, calls: calls, spent: spent}
	}
	if known && known2 {
		acc := after.accepted - before.accepted
		m.server.accepted = &acc
		if midOK {
			late := after.accepted - mid.accepted
			m.server.secondHalf = &late
		}
		if peakKnown {
			peak := after.peakOpen
			m.server.peak = &peak
		}
	}
	if open, ok := settle(ctx, t.stats, baselineOpen, s.settleTimeout); !ok {
		m.note = fmt.Sprintf("%s: %d connections still open at the server %v after the run; the next one started anyway", mode, open, s.settleTimeout)
	}
	return m, ctx.Err()
}

// add folds the next slice of the same mode into m.
func (m *modeRun) add(o *modeRun) {
	m.res.add(o.res)
	m.cpu = cpuTime{user: m.cpu.user + o.cpu.user, sys: m.cpu.sys + o.cpu.sys}
	m.cpuOK = m.cpuOK && o.cpuOK
	m.pool = m.pool.plus(o.pool)
	m.token = m.token.plus(o.token)
	sum := func(a, b *int64) *int64 {
		if a == nil || b == nil {
			return nil
		}
		n := *a + *b
		return &n
	}
	m.server.accepted = sum(m.server.accepted, o.server.accepted)
	m.server.secondHalf = sum(m.server.secondHalf, o.server.secondHalf)
	if m.server.peak != nil && o.server.peak != nil {
		p := max(*m.server.peak, *o.server.peak)
		m.server.peak = &p
	} else {
		m.server.peak = nil
	}
}

// result is the report of mode's whole run.
func (m *modeRun) result(mode string) ModeResult {
	var cpu *CPU
	if m.cpuOK {
		cpu = cpuReport(m.cpu, m.res.completed())
	}
	r := modeResult(mode, m.res, cpu)
	r.Pool = m.pool
	// warmpool is not traced by the runner (see client.countsItself): its
	// reuse, dials and TLS handshakes come from its own Stats.
	if p := m.pool; p != nil {
		n := float64(max(r.Requests, 1))
		r.ReuseRate = p.ReuseRate
		r.Dials = p.Created
		r.DialUsPerRequest = float64(p.DialTime.Nanoseconds()) / 1e3 / n
		r.TLSHandshakes = p.TLSHandshakes
		r.TLSUsPerRequest = float64(p.TLSHandshakeTime.Nanoseconds()) / 1e3 / n
		r.TLSFrom = "warmpool Stats"
		r.HTTPClient = p.httpClient
	}
	r.ServerAccepted = m.server.accepted
	r.ServerAcceptedSecondHalf = m.server.secondHalf
	r.ServerPeakOpen = m.server.peak
	r.Token = m.token.result(r.Requests)
	return r
}
