package bench

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Run runs every mode of s over every protocol of s, in turn, at the same
// load, and returns the report. Every run stops by itself, at s.Duration or
// s.Requests, whichever comes first; ctx can stop them all sooner.
func Run(ctx context.Context, s Settings) (*Report, error) {
	s, err := s.normalize()
	if err != nil {
		return nil, err
	}
	s = s.withDuration()
	rep := newReport(s)
	prog := &progress{w: s.Progress, total: s.runCount() * s.Rounds}
	for _, proto := range s.Protos {
		pr, err := runProto(ctx, s, proto, prog)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", proto, err)
		}
		rep.Protos = append(rep.Protos, *pr)
	}
	rep.computeRatios()
	rep.Machine.LoadAvgEnd = loadAvg("/proc/loadavg")
	return rep, nil
}

func newReport(s Settings) *Report {
	target := "in-process"
	if s.Target != "" {
		target = s.Target
	}
	model := "closed"
	if s.Rate > 0 {
		model = "open"
	}
	rep := &Report{
		SchemaVersion: SchemaVersion,
		StartedAt:     time.Now().UTC().Truncate(time.Second),
		Settings: ReportSettings{
			Target:          target,
			Protos:          s.Protos,
			Modes:           s.Modes,
			LoadModel:       model,
			Concurrency:     s.Concurrency,
			RatePerSecond:   s.Rate,
			DurationPerRunS: s.Duration.Seconds(),
			RequestsPerRun:  s.Requests,
			Rounds:          s.Rounds,
			Runs:            s.runCount(),
			RTTMs:           ms(s.RTT),
			JitterMs:        ms(s.Jitter),
			BandwidthKBps:   s.BandwidthKBps,
			RequestBytes:    len(s.Body),
			ServerDelayMs:   ms(s.ServerDelay),
			ConfigFile:      s.ConfigFile,
			Insecure:        s.Insecure,
			TunedMaxConns:   s.Concurrency + TunedHeadroom,
			TokenMode:       s.TokenMode,
			TokenFetchMs:    ms(s.TokenFetch),
		},
		Machine:     thisMachine(),
		Definitions: definitions,
		Notes:       []string{},
	}
	if s.Target == "" {
		rep.Notes = append(rep.Notes, "The server runs in this process: CPU per request includes it, and client and server share the machine's cores.")
	}
	if s.TokenMode != TokenNone {
		rep.Notes = append(rep.Notes, "Tokens come from a fake issuer in this process (GET /token?audience=<origin> on 127.0.0.1, never through -rtt's proxy) "+
			"that answers after -token-fetch with a JWT valid for 1h: the very token the server requires, so a request without it fails with 401, a status error. "+
			"In per-request mode every mode fetches before each request, over a new connection, and sets the header itself: warmpool caches any token source it is given.")
	}
	return rep
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// runProto runs every mode over one protocol against one server, in
// s.Rounds interleaved rounds.
func runProto(ctx context.Context, s Settings, proto string, prog *progress) (*ProtoResult, error) {
	t, err := startTarget(s, proto)
	if err != nil {
		return nil, err
	}
	defer t.close()
	pr := &ProtoResult{Proto: proto, Server: t.desc, URL: t.url, Modes: []ModeResult{}, Skipped: []Skipped{}, Notes: []string{}}
	baseline, _ := t.stats.snapshot(ctx)
	if s.proxied() {
		res, proxy, err := setUpNetwork(ctx, s, t)
		if err != nil {
			return nil, err
		}
		defer proxy.close()
		pr.Proxy = res
		pr.URL = t.url
		settle(ctx, t.stats, baseline.open, s.settleTimeout)
	}
	var modes []string
	for _, mode := range s.Modes {
		if why := skipReason(mode, proto); why != "" {
			pr.Skipped = append(pr.Skipped, Skipped{Mode: mode, Reason: why})
			continue
		}
		modes = append(modes, mode)
	}
	runs := make([]*modeRun, len(modes))
	for round := range s.Rounds {
		for i, mode := range modes {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			prog.start(proto, mode, round, s)
			sl, err := runSlice(ctx, s, t, mode, s.slice(round), baseline.open)
			if err != nil {
				return nil, err
			}
			prog.done(sl)
			if sl.note != "" {
				pr.Notes = append(pr.Notes, sl.note)
			}
			if runs[i] == nil {
				runs[i] = sl
			} else {
				runs[i].add(sl)
			}
		}
	}
	for i, mode := range modes {
		pr.Modes = append(pr.Modes, runs[i].result(mode))
	}
	return pr, nil
}

// settle waits until the server has at most baseline connections open, or
// until timeout. It returns the last open count and whether it got there; an
// unknown count counts as settled.
func settle(ctx context.Context, st serverStats, baseline int64, timeout time.Duration) (int64, bool) {
	deadline := time.Now().Add(timeout)
	for {
		snap, ok := st.snapshot(ctx)
		if !ok || snap.open <= baseline {
			return snap.open, true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return snap.open, false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// progress tells a person at a terminal what runs now.
type progress struct {
	w        io.Writer // nil: silent
	n, total int
}

func (p *progress) start(proto, mode string, round int, s Settings) {
	p.n++
	if p.w == nil {
		return
	}
	fmt.Fprintf(p.w, "warmpool bench: [%d/%d] %s over %s", p.n, p.total, mode, proto)
	if s.Rounds > 1 {
		fmt.Fprintf(p.w, ", round %d/%d", round+1, s.Rounds)
	}
	fmt.Fprintf(p.w, ", %v…", s.slice(round).duration)
}

func (p *progress) done(sl *modeRun) {
	if p.w != nil {
		ok := sl.res.tally.ok
		fmt.Fprintf(p.w, " %d requests, %.0f req/s, %d errors\n", sl.res.completed(), float64(ok)/sl.res.elapsed.Seconds(), sl.res.completed()-ok)
	}
}
