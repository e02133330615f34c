package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/warmpool/warmpool/internal/bench"
)

//go:embed report.html.tmpl
var htmlSource string

// htmlTemplate renders the self-contained HTML report: inline CSS and SVG,
// no script, nothing fetched.
var htmlTemplate = template.Must(template.New("report").Parse(htmlSource))

// WriteHTML writes the report as one self-contained HTML page: per protocol
// a table of the main figures, a latency percentile chart (log scale, one
// line per mode) and bars of throughput and server connections.
func WriteHTML(w io.Writer, r *bench.Report) error {
	return htmlTemplate.Execute(w, newHTMLView(r))
}

type htmlView struct {
	Title    string
	Partial  string // why the report is partial, "" if it is not
	Verdicts []string
	Hints    []string
	Summary  []string
	Protos   []htmlProto
	Notes    []string
	Defs     []htmlDef
}

type htmlDef struct{ Name, Text string }

type htmlProto struct {
	Title   string
	Verdict string
	Lines   []string
	Rows    []htmlRow
	Skipped []bench.Skipped
	Chart   *latencyChart
	Bars    []*barChart
}

type htmlRow struct {
	Mode, Color, Protocol                    string
	Requests, ReqPerS, Errors, P50, P99, Max string
	Accepted, Peak, Reuse, CPU, VsPer, VsDef string
}

func newHTMLView(r *bench.Report) htmlView {
	var head strings.Builder
	writeHeader(&head, r)
	v := htmlView{
		Title:   "warmpool bench " + r.StartedAt.Format("2006-01-02 15:04:05Z"),
		Summary: strings.Split(strings.TrimSpace(head.String()), "\n"),
		Notes:   r.Notes,
		Hints:   r.Hints,
	}
	if r.Partial {
		v.Partial = r.PartialReason
	}
	for _, p := range r.Protos {
		v.Verdicts = append(v.Verdicts, p.Verdict)
	}
	v.Verdicts = append(v.Verdicts, r.Verdict)
	for _, k := range slices.Sorted(maps.Keys(r.Definitions)) {
		v.Defs = append(v.Defs, htmlDef{k, r.Definitions[k]})
	}
	for i := range r.Protos {
		p := &r.Protos[i]
		hp := htmlProto{Title: p.Proto + ": " + p.URL, Verdict: p.Verdict, Lines: []string{p.Server}, Skipped: p.Skipped}
		if x := p.Proxy; x != nil {
			hp.Lines = append(hp.Lines, proxyLines(x)...)
		}
		hp.Lines = append(hp.Lines, p.Notes...)
		for _, m := range p.Modes {
			if x := m.Token; x != nil {
				hp.Lines = append(hp.Lines, fmt.Sprintf("%s tokens: %s issuer fetches, %s per fetch, %s per request",
					m.Mode, fmtInt(x.IssuerFetches), fmtUsF(x.FetchUsMean), fmtUsF(x.FetchUsPerRequest)))
			}
		}
		for _, m := range p.Modes {
			cpu := "-"
			if m.CPU != nil {
				cpu = fmtUsF(m.CPU.UsPerRequest)
			}
			hp.Rows = append(hp.Rows, htmlRow{
				Mode: m.Mode, Color: modeColor(m.Mode), Protocol: protocols(m.Protocols),
				Requests: fmtInt(m.Requests), ReqPerS: fmtRate(m.ReqPerS), Errors: fmtInt(m.Errors.Total),
				P50: fmtUs(m.Latency.P50), P99: fmtUs(m.Latency.P99), Max: fmtUs(m.Latency.Max),
				Accepted: fmtOptInt(m.ServerAccepted), Peak: fmtOptInt(m.ServerPeakOpen),
				Reuse: fmtPercent(m.ReuseRate), CPU: cpu,
				VsPer: fmtRatio(m.VsPerRequest, true), VsDef: fmtRatio(m.VsDefault, true),
			})
		}
		hp.Chart = newLatencyChart(p.Modes)
		if b := newBarChart("throughput (req/s)", p.Modes, func(m *bench.ModeResult) (float64, string, bool) {
			return m.ReqPerS, fmtRate(m.ReqPerS), true
		}); b != nil {
			hp.Bars = append(hp.Bars, b)
		}
		if b := newBarChart("connections accepted by the server", p.Modes, func(m *bench.ModeResult) (float64, string, bool) {
			if m.ServerAccepted == nil {
				return 0, "", false
			}
			return float64(*m.ServerAccepted), fmtInt(*m.ServerAccepted), true
		}); b != nil {
			hp.Bars = append(hp.Bars, b)
		}
		v.Protos = append(v.Protos, hp)
	}
	return v
}
