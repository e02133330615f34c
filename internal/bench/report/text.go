package report

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/warmpool/warmpool/internal/bench"
)

// WriteText writes the report as tables for people: per protocol,
// throughput and latency, then connections, errors and cost, then ratios;
// then the notes and the legend, any hints, and last, where a reader's eye
// lands, the verdicts.
func WriteText(w io.Writer, r *bench.Report) error {
	var b strings.Builder
	writeHeader(&b, r)
	for i := range r.Protos {
		b.WriteString("\n")
		writeProto(&b, &r.Protos[i])
	}
	b.WriteString("\n")
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	b.WriteString(textLegend)
	b.WriteString("\n")
	writeConclusion(&b, r)
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteVerdict writes the hints and the verdicts alone: the end of
// WriteText.
func WriteVerdict(w io.Writer, r *bench.Report) error {
	var b strings.Builder
	writeConclusion(&b, r)
	_, err := io.WriteString(w, b.String())
	return err
}

func writeConclusion(b *strings.Builder, r *bench.Report) {
	if r.Partial {
		fmt.Fprintf(b, "PARTIAL REPORT: %s; the runs above are those that finished.\n", r.PartialReason)
	}
	for _, h := range r.Hints {
		b.WriteString(h + "\n")
	}
	for _, p := range r.Protos {
		b.WriteString(p.Verdict + "\n")
	}
	b.WriteString(r.Verdict + "\n")
}

const textLegend = `req/s counts successful requests over the run's elapsed time. Latency is of
successful requests; in the open model it runs from the scheduled send time.
accepted (in all, and in the second half of the run: the steady state) and peak
are the server's own connection counts ("-": unknown). Errors are by kind, as
warmpool.ErrorKind names them. reuse, dial and tls come from httptrace, or (*)
warmpool's Stats. cpu is the whole process's (getrusage): the in-process server
and proxy too. Body bytes leave out headers and TLS. In the ratios, higher is
better: throughput is req/s ÷ the other mode's, p50 speed-up the other mode's
p50 ÷ this one's; same protocol, same invocation. The verdicts take a ratio
within 10% for on par: run again, or with -rounds, before trusting less.
`

func writeHeader(b *strings.Builder, r *bench.Report) {
	s := &r.Settings
	target := "the in-process reference server on 127.0.0.1"
	if s.Target != "in-process" {
		target = s.Target
	}
	fmt.Fprintf(b, "warmpool bench: POST of a %d-byte JSON body with a bearer token to %s\n", s.RequestBytes, target)
	bound := "unbounded requests"
	if s.RequestsPerRun > 0 {
		bound = fmtInt(s.RequestsPerRun) + " requests"
	}
	if s.LoadModel == "open" {
		fmt.Fprintf(b, "load: open model, %s req/s scheduled from the start, at most %d in flight;", fmtFloat(s.RatePerSecond), s.Concurrency)
	} else {
		workers := "workers"
		if s.Concurrency == 1 {
			workers = "worker"
		}
		fmt.Fprintf(b, "load: closed model, %d %s;", s.Concurrency, workers)
	}
	fmt.Fprintf(b, " each run %s or %s, whichever first; %d runs", fmtSeconds(s.DurationPerRunS), bound, s.Runs)
	if s.Rounds > 1 {
		fmt.Fprintf(b, ", each in %d rounds interleaved with the other modes'", s.Rounds)
	}
	b.WriteString("\n")
	if line := serverLine(s); line != "" {
		fmt.Fprintf(b, "server: %s\n", line)
	}
	fmt.Fprintf(b, "token mode: %s\n", tokenModeLine(s))
	if s.ConfigFile != "" {
		fmt.Fprintf(b, "warmpool config: %s\n", s.ConfigFile)
	}
	m := &r.Machine
	model := m.CPUModel
	if model == "" {
		model = "unknown CPU"
	}
	fmt.Fprintf(b, "machine: %s, %d CPUs, GOMAXPROCS %d, %s %s/%s", model, m.NumCPU, m.GOMAXPROCS, m.GoVersion, m.OS, m.Arch)
	if m.LoadAvgStart != nil && m.LoadAvgEnd != nil {
		fmt.Fprintf(b, ", load average %.2f before, %.2f after", *m.LoadAvgStart, *m.LoadAvgEnd)
		if max(*m.LoadAvgStart, *m.LoadAvgEnd) > float64(m.NumCPU)/2 {
			b.WriteString(" (other processes competed for the CPUs: expect noise)")
		}
	}
	b.WriteString("\n")
}

func writeProto(b *strings.Builder, p *bench.ProtoResult) {
	fmt.Fprintf(b, "== %s: %s (%s)\n", p.Proto, p.URL, p.Server)
	if x := p.Proxy; x != nil {
		for _, l := range proxyLines(x) {
			b.WriteString(l + "\n")
		}
		b.WriteString("\n")
	}

	lat := newTable("mode", "protocol", ">requests", ">req/s", ">errors", ">min", ">p50", ">p90", ">p99", ">p99.9", ">max")
	for _, m := range p.Modes {
		l := m.Latency
		lat.add(m.Mode, protocols(m.Protocols), fmtInt(m.Requests), fmtRate(m.ReqPerS), fmtInt(m.Errors.Total),
			fmtUs(l.Min), fmtUs(l.P50), fmtUs(l.P90), fmtUs(l.P99), fmtUs(l.P999), fmtUs(l.Max))
	}
	lat.write(b)
	for _, s := range p.Skipped {
		fmt.Fprintf(b, "%s skipped: %s\n", s.Mode, s.Reason)
	}
	if len(p.Modes) == 0 {
		return
	}
	b.WriteString("\n")
	writeConnections(b, p)
	b.WriteString("\nratios, higher is better: this mode's req/s ÷ the other's, and the other's p50 ÷ this mode's\n")
	ratios := newTable("mode", ">req/s ×per-request", ">×default", ">×tuned", ">p50 speed-up ×per-request", ">×default", ">×tuned")
	for _, m := range p.Modes {
		ratios.add(m.Mode, fmtRatio(m.VsPerRequest, true), fmtRatio(m.VsDefault, true), fmtRatio(m.VsTuned, true),
			fmtRatio(m.VsPerRequest, false), fmtRatio(m.VsDefault, false), fmtRatio(m.VsTuned, false))
	}
	ratios.write(b)
	writePools(b, p)
	writeTokens(b, p)
	writeModeNotes(b, p)
}

// writeConnections prints each mode's connections, as the server counted
// them, and its costs per request.
func writeConnections(b *strings.Builder, p *bench.ProtoResult) {
	tlsFromPool := false
	conns := newTable("mode", ">accepted", ">2nd half", ">peak", ">reuse", ">dial/req", ">tls/req", ">cpu/req", ">body out/req", ">body in/req", "errors by kind")
	for _, m := range p.Modes {
		cpu := "-"
		if m.CPU != nil {
			cpu = fmtUsF(m.CPU.UsPerRequest)
		}
		tlsReq := fmtUsF(m.TLSUsPerRequest)
		reuse, dial := fmtPercent(m.ReuseRate), fmtUsF(m.DialUsPerRequest)
		if m.TLSFrom != "httptrace" {
			reuse, dial, tlsReq = reuse+"*", dial+"*", tlsReq+"*"
			tlsFromPool = true
		}
		if p.Proto != bench.ProtoTLS {
			tlsReq = "-"
		}
		conns.add(m.Mode, fmtOptInt(m.ServerAccepted), fmtOptInt(m.ServerAcceptedSecondHalf), fmtOptInt(m.ServerPeakOpen), reuse,
			dial, tlsReq, cpu, perRequest(m.BytesSent, m.OK), perRequest(m.BytesReceived, m.OK), errorKinds(m.Errors))
	}
	conns.write(b)
	if tlsFromPool {
		b.WriteString("* from warmpool's own Stats: the bench adds no httptrace to warmpool's requests (a second trace would make net/http merge the two by reflection, a cost only warmpool would pay)\n")
	}
}

// writePools prints each warmpool mode's pool and the doctor's findings.
func writePools(b *strings.Builder, p *bench.ProtoResult) {
	for _, m := range p.Modes {
		if x := m.Pool; x != nil {
			fmt.Fprintf(b, "%s pool: created %s, reuse %s, pool timeouts %s, open at end %s\n",
				m.Mode, fmtInt(x.Created), fmtPercent(x.ReuseRate), fmtInt(x.PoolTimeouts), fmtInt(x.Open))
			if len(x.Findings) == 0 {
				fmt.Fprintf(b, "%s doctor: no findings (pool healthy)\n", m.Mode)
			}
			for _, f := range x.Findings {
				fmt.Fprintf(b, "%s doctor: %s %s: %s; fix: %s\n", m.Mode, f.Severity, f.Rule, f.Message, f.Fix)
			}
		}
	}
}

// writeModeNotes prints what else each mode's run saw: the open model's
// figures, its errors, requests cancelled at the stop, and the notes.
func writeModeNotes(b *strings.Builder, p *bench.ProtoResult) {
	for _, m := range p.Modes {
		if o := m.Open; o != nil {
			fmt.Fprintf(b, "%s open model: %s scheduled, %s unsent (no free worker before the end), %s started >1ms late\n",
				m.Mode, fmtInt(o.Scheduled), fmtInt(o.Unsent), fmtInt(o.Late))
		}
	}
	for _, m := range p.Modes {
		e := m.Errors
		if e.Total == 0 {
			continue
		}
		fmt.Fprintf(b, "%s errors: %s; first: %s\n", m.Mode, failures(&m), strings.Join(m.ErrorSamples, " | "))
	}
	for _, m := range p.Modes {
		if m.CancelledAtStop > 0 {
			fmt.Fprintf(b, "%s: %d requests still in flight at the hard stop were cancelled (not counted)\n", m.Mode, m.CancelledAtStop)
		}
	}
	for _, n := range p.Notes {
		fmt.Fprintf(b, "note: %s\n", n)
	}
}

// serverLine describes the in-process server's settings, "" for the
// defaults.
func serverLine(s *bench.ReportSettings) string {
	var parts []string
	if s.ServerDelayMs > 0 {
		parts = append(parts, fmtFloat(s.ServerDelayMs)+"ms service time per request")
	}
	if s.ServerIdleTimeoutS > 0 {
		parts = append(parts, "closes a connection idle for "+fmtSeconds(s.ServerIdleTimeoutS))
	}
	if s.ServerMaxRequestsPerConn > 0 {
		parts = append(parts, "closes a connection after "+plural(s.ServerMaxRequestsPerConn, "request"))
	}
	return strings.Join(parts, ", ")
}

// tokenModeLine says where the requests' token came from.
func tokenModeLine(s *bench.ReportSettings) string {
	issuer := "from the in-process issuer, which answers after " + fmtFloat(s.TokenFetchMs) + "ms"
	switch s.TokenMode {
	case bench.TokenPerRequest:
		return "per-request: a token fetched before every request, over a new connection, " + issuer
	case bench.TokenCached:
		return "cached: a token fetched once per lifetime (1h) per client, " + issuer
	}
	return "none: one static token in every request"
}

// writeTokens writes what each mode's tokens cost, in a token mode.
func writeTokens(b *strings.Builder, p *bench.ProtoResult) {
	t := newTable("mode", ">issuer fetches", ">fetch mean", ">fetch/req")
	n := 0
	for _, m := range p.Modes {
		if x := m.Token; x != nil {
			t.add(m.Mode, fmtInt(x.IssuerFetches), fmtUsF(x.FetchUsMean), fmtUsF(x.FetchUsPerRequest))
			n++
		}
	}
	if n == 0 {
		return
	}
	b.WriteString("\n")
	t.write(b)
	b.WriteString("issuer fetches: the issuer's own count; fetch mean and fetch/req: client-side time fetching ÷ fetches, ÷ requests (included in latency and req/s)\n")
}

// proxyLines describe the simulated network and what the proxy costs by
// itself.
func proxyLines(x *bench.ProxyResult) []string {
	var b strings.Builder
	fmt.Fprintf(&b, "network: %s: ", x.Kind)
	if x.RTTMs > 0 {
		fmt.Fprintf(&b, "RTT %sms (%sms up, %sms down), and %sms more before the first bytes of a connection for the TCP handshake",
			fmtFloat(x.RTTMs), fmtFloat(x.UpstreamMs), fmtFloat(x.DownstreamMs), fmtFloat(x.HandshakeMs))
	} else {
		b.WriteString("no added latency")
	}
	if x.JitterMs > 0 {
		fmt.Fprintf(&b, ", jitter ±%sms", fmtFloat(x.JitterMs))
	}
	if x.BandwidthKBps > 0 {
		fmt.Fprintf(&b, ", %d KB/s each way", x.BandwidthKBps)
	}
	b.WriteString(".")
	return []string{b.String(), fmt.Sprintf("proxy by itself: p50 %+dµs (sequential keep-alive: direct %s, through the proxy without delay %s); through the simulated network %s",
		x.OverheadP50Us, fmtUs(x.DirectP50Us), fmtUs(x.ProxiedP50Us), fmtUs(x.NetworkP50Us))}
}

// table is a text table; a header starting with ">" right-aligns its column.
type table struct {
	right []bool
	rows  [][]string
}

func newTable(headers ...string) *table {
	t := &table{right: make([]bool, len(headers))}
	row := make([]string, len(headers))
	for i, h := range headers {
		t.right[i] = strings.HasPrefix(h, ">")
		row[i] = strings.TrimPrefix(h, ">")
	}
	t.rows = append(t.rows, row)
	return t
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(b *strings.Builder) {
	width := make([]int, len(t.right))
	for _, row := range t.rows {
		for i, c := range row {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	for _, row := range t.rows {
		var line strings.Builder
		for i, c := range row {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if i > 0 {
				line.WriteString("  ")
			}
			if t.right[i] {
				line.WriteString(pad + c)
			} else {
				line.WriteString(c + pad)
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
}

// protocols names the protocols of the responses, the main one first.
func protocols(by map[string]int64) string {
	names := make([]string, 0, len(by))
	for p := range by {
		names = append(names, p)
	}
	slices.SortFunc(names, func(a, b string) int {
		if by[a] != by[b] {
			return int(by[b] - by[a])
		}
		return strings.Compare(a, b)
	})
	if len(names) == 0 {
		return "-"
	}
	return strings.Join(names, "+")
}

func fmtOptInt(p *int64) string {
	if p == nil {
		return "-"
	}
	return fmtInt(*p)
}

// fmtInt and fmtRate format as the progress lines do.
var (
	fmtInt  = bench.FormatInt
	fmtRate = bench.FormatRate
)

// fmtUs formats a latency in microseconds with about three digits.
func fmtUs(us int64) string { return fmtUsF(float64(us)) }

func fmtUsF(us float64) string {
	switch {
	case us < 0.05:
		return "0"
	case us < 10:
		return strconv.FormatFloat(us, 'f', 1, 64) + "µs"
	case us < 1000:
		return strconv.FormatFloat(us, 'f', 0, 64) + "µs"
	case us < 10_000:
		return strconv.FormatFloat(us/1e3, 'f', 2, 64) + "ms"
	case us < 100_000:
		return strconv.FormatFloat(us/1e3, 'f', 1, 64) + "ms"
	case us < 10_000_000:
		return strconv.FormatFloat(us/1e3, 'f', 0, 64) + "ms"
	}
	return strconv.FormatFloat(us/1e6, 'f', 1, 64) + "s"
}

func fmtPercent(f float64) string { return strconv.FormatFloat(f*100, 'f', 1, 64) + "%" }

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func fmtSeconds(s float64) string { return strconv.FormatFloat(s, 'f', -1, 64) + "s" }

func perRequest(total, n int64) string {
	if n == 0 {
		return "-"
	}
	return strconv.FormatInt((total+n/2)/n, 10) + " B"
}

// fmtCodes formats status codes and their counts: "401×20, 503×2".
func fmtCodes(codes map[string]int64) string {
	var cs []string
	for _, c := range slices.Sorted(maps.Keys(codes)) {
		cs = append(cs, c+"×"+fmtInt(codes[c]))
	}
	return strings.Join(cs, ", ")
}

// fmtRatio formats the throughput or p50 speed-up of r.
func fmtRatio(r *bench.Ratio, throughput bool) string {
	if r == nil {
		return "-"
	}
	v := r.P50Speedup
	if throughput {
		v = r.Throughput
	}
	switch {
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64) + "×"
	case v >= 0.1:
		return strconv.FormatFloat(v, 'f', 2, 64) + "×"
	}
	return strconv.FormatFloat(v, 'f', 3, 64) + "×"
}
