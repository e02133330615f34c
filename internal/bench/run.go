package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/warmpool/warmpool"
)

// Run runs every mode of s over every protocol of s, in turn, at the same
// load, and returns the report of what it measured: package report's Finish
// concludes it (ratios, verdicts, hints, definitions) and writes it. Every
// run stops by itself, at s.Duration or
// s.Requests, whichever comes first; ctx can stop them all sooner. If ctx
// ends before the last run, Run returns the report of the runs that
// finished, marked Partial, with ctx's error; the run it stopped is left out.
func Run(ctx context.Context, s Settings) (*Report, error) {
	s, err := s.normalize()
	if err != nil {
		return nil, err
	}
	s = s.withDuration()
	rep := newReport(s)
	prog := newProgress(s)
	defer prog.stop()
	for _, proto := range s.Protos {
		pr, err := runProto(ctx, s, proto, prog)
		if pr != nil && (err == nil || len(pr.Modes) > 0) {
			rep.Protos = append(rep.Protos, *pr)
		}
		if err != nil && ctx.Err() != nil {
			rep.Partial = true
			rep.PartialReason = prog.stoppedAfter()
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", proto, err)
		}
	}
	rep.Machine.LoadAvgEnd = loadAvg("/proc/loadavg")
	if rep.Partial {
		return rep, ctx.Err()
	}
	return rep, nil
}

// NewReport is the report of a Run of s before its first run: the
// settings, defaults filled in, the machine and the notes, and no runs. Run
// starts from it; package report's tests build on it.
func NewReport(s Settings) (*Report, error) {
	s, err := s.normalize()
	if err != nil {
		return nil, err
	}
	return newReport(s.withDuration()), nil
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

			ServerIdleTimeoutS:       s.ServerIdleTimeout.Seconds(),
			ServerMaxRequestsPerConn: int64(s.ServerMaxRequests),
		},
		WarmpoolVersion: warmpool.BuildVersion(),
		Hints:           []string{},
		Machine:         thisMachine(),
		Notes:           []string{},
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
		if err != nil && ctx.Err() != nil {
			return pr, ctx.Err()
		}
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
	// partial is pr with the runs finished so far, for an interruption.
	partial := func(err error) (*ProtoResult, error) {
		for i, mode := range modes {
			if runs[i] != nil {
				pr.Modes = append(pr.Modes, runs[i].result(mode))
			}
		}
		return pr, err
	}
	for round := range s.Rounds {
		for i, mode := range modes {
			if err := ctx.Err(); err != nil {
				return partial(err)
			}
			prog.start(proto, mode, round)
			sl, err := runSlice(ctx, s, t, mode, s.slice(round), baseline.open)
			if ctx.Err() != nil {
				return partial(ctx.Err()) // the slice was cut short: left out
			}
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
