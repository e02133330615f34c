package report

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/warmpool/warmpool/internal/bench"
)

// onPar is how close two throughputs must be for the verdict to call them
// on par: within 10 %, about the spread of one invocation on a shared
// machine.
const onPar = 0.10

// baseNames are how the verdict names the modes it compares warmpool with.
var baseNames = map[string]string{
	bench.ModePerRequest: "the per-request pattern",
	bench.ModeDefault:    "Go's default client",
	bench.ModeTuned:      "a hand-tuned net/http client",
}

// protoVerdict concludes over one protocol from its runs: how warmpool
// compares with the per-request pattern (or, without it, Go's default
// client) in throughput, median latency and connections, then with Go's
// default client and a hand-tuned one in throughput, and whether any of
// warmpool's requests failed. It says why when it cannot conclude.
func protoVerdict(p *bench.ProtoResult, partial bool) string {
	head := "verdict (" + p.Proto + "): "
	wp := verdictSubject(p)
	switch {
	case wp == nil && partial:
		return head + "no verdict: no warmpool mode finished before the interruption"
	case wp == nil:
		return head + "no verdict: " + noSubject(p)
	case wp.OK == 0:
		return head + fmt.Sprintf("no verdict: every one of %s's %s requests failed (%s)%s", wp.Mode, fmtInt(wp.Requests), failures(wp), firstSample(wp))
	}
	var b strings.Builder
	b.WriteString(head + wp.Mode)
	main := verdictBase(p, bench.ModePerRequest, bench.ModeDefault)
	if main == nil {
		fmt.Fprintf(&b, " made %s req/s at a p50 of %s", fmtRate(wp.ReqPerS), fmtUs(wp.Latency.P50))
		if wp.ServerAccepted != nil {
			fmt.Fprintf(&b, ", on %s", plural(*wp.ServerAccepted, "connection"))
		}
	} else {
		r := ratio(wp, main)
		fmt.Fprintf(&b, " made %s %s's throughput at %s", fmtTimes(r.Throughput), baseNames[main.Mode], latencyShare(r.P50Speedup))
		if wp.ServerAccepted != nil && main.ServerAccepted != nil {
			fmt.Fprintf(&b, ", on %s instead of %s", plural(*wp.ServerAccepted, "connection"), fmtInt(*main.ServerAccepted))
		}
		if main.Errors.Total > 0 {
			fmt.Fprintf(&b, " (%s of its requests failed)", fmtInt(main.Errors.Total))
		}
	}
	for _, name := range []string{bench.ModeDefault, bench.ModeTuned} {
		if base := verdictBase(p, name); base != nil && base != main {
			b.WriteString("; " + throughputVs(ratio(wp, base).Throughput, baseNames[name]))
		}
	}
	if h2 := findMode(p, bench.ModeWarmpoolH2); h2 != nil && h2 != wp && h2.OK > 0 && main != nil {
		fmt.Fprintf(&b, "; %s made %s %s's throughput", h2.Mode, fmtTimes(ratio(h2, main).Throughput), baseNames[main.Mode])
		if h2.ServerAccepted != nil {
			fmt.Fprintf(&b, ", on %s", plural(*h2.ServerAccepted, "connection"))
		}
	}
	if e := wp.Errors; e.Total > 0 {
		fmt.Fprintf(&b, "; but %s of %s's %s requests failed (%s)", fmtInt(e.Total), wp.Mode, fmtInt(wp.Requests), failures(wp))
	}
	b.WriteString(".")
	return b.String()
}

// verdictSubject is the warmpool mode the verdict is about: warmpool, or
// warmpool-h2 when warmpool did not run.
func verdictSubject(p *bench.ProtoResult) *bench.ModeResult {
	if m := findMode(p, bench.ModeWarmpool); m != nil {
		return m
	}
	return findMode(p, bench.ModeWarmpoolH2)
}

// noSubject says why no warmpool mode ran over p.
func noSubject(p *bench.ProtoResult) string {
	for _, s := range p.Skipped {
		if s.Mode == bench.ModeWarmpool || s.Mode == bench.ModeWarmpoolH2 {
			return s.Mode + " skipped: " + s.Reason
		}
	}
	return "no warmpool mode ran (add warmpool to -modes)"
}

// verdictBase is the first of names that ran over p with a request that
// succeeded, or nil.
func verdictBase(p *bench.ProtoResult, names ...string) *bench.ModeResult {
	for _, n := range names {
		if m := findMode(p, n); m != nil && m.OK > 0 && m.Latency.P50 > 0 {
			return m
		}
	}
	return nil
}

func findMode(p *bench.ProtoResult, name string) *bench.ModeResult {
	for i := range p.Modes {
		if p.Modes[i].Mode == name {
			return &p.Modes[i]
		}
	}
	return nil
}

// latencyShare puts a p50 speed-up in words: "1/15 of its median latency",
// or "0.40× its median latency" under 10×.
func latencyShare(speedup float64) string {
	if speedup >= 10 {
		return "1/" + strconv.FormatInt(int64(math.Round(speedup)), 10) + " of its median latency"
	}
	return fmtTimes(1/speedup) + " its median latency"
}

// throughputVs compares throughput with a base in words: "1.30× Go's
// default client's throughput", with "(on par)" within onPar.
func throughputVs(r float64, base string) string {
	s := fmtTimes(r) + " " + base + "'s throughput"
	if math.Abs(r-1) <= onPar {
		s += " (on par)"
	}
	return s
}

// fmtTimes formats a ratio with about three digits: 16.5×, 1.01×, 0.072×.
func fmtTimes(v float64) string { return fmtRatio(&bench.Ratio{Throughput: v}, true) }

// plural is "1 connection" or "32 connections".
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmtInt(n) + " " + noun + "s"
}

// failures lists m's errors by kind, and the status codes of status errors:
// "500 status, status codes 401×500".
func failures(m *bench.ModeResult) string {
	s := errorKinds(m.Errors)
	if len(m.StatusCodes) > 0 {
		s += ", status codes " + fmtCodes(m.StatusCodes)
	}
	return s
}

func firstSample(m *bench.ModeResult) string {
	if len(m.ErrorSamples) == 0 {
		return ""
	}
	return "; first: " + m.ErrorSamples[0]
}

// overallVerdict concludes over every protocol: the range of warmpool's
// throughput against the per-request pattern and a hand-tuned client,
// its connections, and its failed requests.
func overallVerdict(r *bench.Report) string {
	head := "verdict: "
	if r.Partial {
		head = "verdict (partial, " + r.PartialReason + "): "
	}
	o := gatherOverall(r)
	if len(o.protos) == 0 {
		return head + o.noVerdict(r)
	}
	parts := o.comparisons()
	if o.failed == 0 {
		parts = append(parts, "none of its requests failed")
	} else {
		c := bench.NewErrorCounts(o.kinds)
		parts = append(parts, fmt.Sprintf("but %s of its %s requests failed (%s): see the tables", fmtInt(o.failed), fmtInt(o.requests), errorKinds(c)))
	}
	s := head + "over " + joinAnd(o.protos) + ", " + strings.Join(parts, "; ")
	if len(o.none) > 0 {
		s += "; no verdict over " + joinAnd(o.none)
	}
	return s + "."
}

// overall is what the verdict over every protocol is drawn from.
type overall struct {
	protos, none, bases []string // protocols with a verdict, without; the bases compared with
	vsMain, vsTuned     []float64
	conns, perConns     []int64
	failed, requests    int64
	kinds               map[string]int64
}

// gatherOverall collects warmpool's figures over r's protocols.
func gatherOverall(r *bench.Report) overall {
	o := overall{kinds: map[string]int64{}}
	for i := range r.Protos {
		p := &r.Protos[i]
		wp := verdictSubject(p)
		if wp == nil || wp.OK == 0 {
			o.none = append(o.none, p.Proto)
			if wp != nil {
				o.failed += wp.Errors.Total
				o.requests += wp.Requests
			}
			continue
		}
		o.protos = append(o.protos, p.Proto)
		o.failed += wp.Errors.Total
		o.requests += wp.Requests
		for k, n := range wp.Errors.ByKind {
			o.kinds[k] += n
		}
		if main := verdictBase(p, bench.ModePerRequest, bench.ModeDefault); main != nil {
			o.vsMain = append(o.vsMain, ratio(wp, main).Throughput)
			if !slices.Contains(o.bases, main.Mode) {
				o.bases = append(o.bases, main.Mode)
			}
			if wp.ServerAccepted != nil && main.ServerAccepted != nil {
				o.conns = append(o.conns, *wp.ServerAccepted)
				o.perConns = append(o.perConns, *main.ServerAccepted)
			}
		}
		if tuned := verdictBase(p, bench.ModeTuned); tuned != nil {
			o.vsTuned = append(o.vsTuned, ratio(wp, tuned).Throughput)
		}
	}
	return o
}

// noVerdict says why no protocol has a verdict.
func (o overall) noVerdict(r *bench.Report) string {
	switch {
	case len(r.Protos) == 0:
		return "no verdict: no run finished"
	case o.failed > 0 && len(r.Hints) > 0:
		return fmt.Sprintf("no verdict: every warmpool request failed (%s of %s): see the hint above", fmtInt(o.failed), fmtInt(o.requests))
	case o.failed > 0:
		return fmt.Sprintf("no verdict: every warmpool request failed (%s of %s)", fmtInt(o.failed), fmtInt(o.requests))
	case r.Partial:
		return "no verdict: no warmpool mode finished before the interruption"
	}
	return "no verdict: no warmpool mode ran (add warmpool to -modes)"
}

// comparisons put warmpool against the per-request pattern (or Go's
// default client) and the hand-tuned client, over every protocol.
func (o overall) comparisons() []string {
	var parts []string
	if len(o.vsMain) > 0 {
		var names []string
		for _, b := range o.bases {
			names = append(names, baseNames[b])
		}
		base := strings.Join(names, " or ")
		s := fmt.Sprintf("warmpool made %s %s's throughput", fmtRange(o.vsMain), base)
		switch len(o.conns) {
		case 0:
		case 1:
			s += fmt.Sprintf(" on %s where %s opened %s", plural(o.conns[0], "connection"), base, fmtInt(o.perConns[0]))
		default:
			s += fmt.Sprintf(" on at most %s where %s opened up to %s", plural(slices.Max(o.conns), "connection"), base, fmtInt(slices.Max(o.perConns)))
		}
		parts = append(parts, s)
	}
	if len(o.vsTuned) > 0 {
		s := fmtRange(o.vsTuned) + " " + baseNames[bench.ModeTuned] + "'s"
		if len(parts) == 0 {
			s = "warmpool made " + s + " throughput"
		}
		if slices.Min(o.vsTuned) >= 1-onPar && slices.Max(o.vsTuned) <= 1+onPar {
			s += " (on par)"
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		parts = append(parts, "warmpool ran with nothing to compare it with (add per-request or tuned to -modes)")
	}
	return parts
}

// sentence ends s with a full stop.
func sentence(s string) string {
	if strings.HasSuffix(s, ".") {
		return s
	}
	return s + "."
}

// fmtRange is "5.36×" or "5.36×–25.9×".
func fmtRange(v []float64) string {
	lo, hi := slices.Min(v), slices.Max(v)
	if fmtTimes(lo) == fmtTimes(hi) {
		return fmtTimes(lo)
	}
	return fmtTimes(lo) + "–" + fmtTimes(hi)
}

// joinAnd is "http", "http and tls", "http, tls and h2c".
func joinAnd(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// hints name the flag to change when the runs failed for a common cause: a
// server answering 401 wants a token, one answering 403 did not accept it.
func hints(r *bench.Report) []string {
	h := []string{}
	var unauthorized, forbidden, requests int64
	for _, p := range r.Protos {
		for _, m := range p.Modes {
			unauthorized += m.StatusCodes["401"]
			forbidden += m.StatusCodes["403"]
			requests += m.Requests
		}
	}
	external := r.Settings.Target != "in-process"
	if unauthorized > 0 {
		if external {
			h = append(h, fmt.Sprintf("hint: the server answered 401 Unauthorized to %s of %s requests: it wants a bearer token: pass it with -token T or $WARMPOOL_TOKEN (-token-mode is for the in-process server, which trusts the in-process issuer)",
				fmtInt(unauthorized), fmtInt(requests)))
		} else {
			h = append(h, fmt.Sprintf("hint: the in-process server answered 401 Unauthorized to %s of %s requests: they went without the token it requires; with -token-mode, see the error samples",
				fmtInt(unauthorized), fmtInt(requests)))
		}
	}
	if forbidden > 0 && external {
		h = append(h, fmt.Sprintf("hint: the server answered 403 Forbidden to %s of %s requests: it did not accept the token given with -token or $WARMPOOL_TOKEN",
			fmtInt(forbidden), fmtInt(requests)))
	}
	return h
}
