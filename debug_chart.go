package warmpool

import (
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// The pool page's charts, drawn on the server so that the page shows them
// without JavaScript; debug_page.js's charts() and path() draw the same
// from stats.json when the page updates itself. Keep the two in step.

const (
	chartW    = 240 // the SVG's width: 4 units per point, 60 samples and the live point
	chartH    = 50
	chartStep = 4
)

// debugChart is one small chart: a title, its lines and its scale.
type debugChart struct {
	ID    string // conns, rps, reuse, dials, failures, latency
	Title string
	Max   string // the top of the scale, formatted
	Lines []debugLine
}

// debugLine is one line of a chart.
type debugLine struct {
	Label string
	Class string // s0…s3: its colour
	Path  string // the SVG path; "" when it has no point
	Last  string // its latest value, formatted
}

// chartSeries is a line's values before drawing; NaN is no value.
type chartSeries struct {
	label  string
	values []float64
}

// debugCharts draws the charts of s, one of v's series.
func debugCharts(v *debugHistoryView, s *debugSeries) []debugChart {
	dur := v.DurMS
	var failures []chartSeries
	for _, k := range slices.Sorted(maps.Keys(s.Failures)) {
		failures = append(failures, chartSeries{k, chartRate(s.Failures[k], dur)})
	}
	return []debugChart{
		drawChart("conns", "connections", "", 0, []chartSeries{
			{"open", chartGauge(s.Open)}, {"active", chartGauge(s.InUse)}, {"dialing", chartGauge(s.Dialing)}}),
		drawChart("rps", "requests", "/s", 0, []chartSeries{{"attempts", chartRate(s.Requests, dur)}}),
		drawChart("reuse", "reuse rate", "%", 100, []chartSeries{{"reused", chartRatio(s.Reused, s.Requests)}}),
		drawChart("dials", "dials and closes", "/s", 0, []chartSeries{
			{"dials", chartRate(s.Created, dur)}, {"closes", chartRate(s.Closed, dur)},
			{"failed", chartRate(s.DialFailures, dur)}}),
		drawChart("failures", "failed attempts by kind", "/s", 0, failures),
		drawChart("latency", "latency", "ms", 0, []chartSeries{{"p50", chartMillis(s.P50us)}, {"p99", chartMillis(s.P99us)}}),
	}
}

func chartGauge(x []int64) []float64 {
	out := make([]float64, len(x))
	for i, n := range x {
		out[i] = float64(n)
	}
	return out
}

// chartRate is x per second over intervals of dur ms; an interval under a
// second (the live one, just after a sample) has no value.
func chartRate(x, dur []int64) []float64 {
	out := make([]float64, len(x))
	for i, n := range x {
		out[i] = math.NaN()
		if i < len(dur) && dur[i] >= 1000 {
			out[i] = float64(n) * 1000 / float64(dur[i])
		}
	}
	return out
}

func chartRatio(part, whole []int64) []float64 {
	out := make([]float64, len(part))
	for i := range part {
		out[i] = math.NaN()
		if whole[i] > 0 {
			out[i] = float64(part[i]) * 100 / float64(whole[i])
		}
	}
	return out
}

// chartMillis is microseconds as milliseconds; 0 (no answer) has no value.
func chartMillis(us []int64) []float64 {
	out := make([]float64, len(us))
	for i, n := range us {
		out[i] = math.NaN()
		if n > 0 {
			out[i] = float64(n) / 1000
		}
	}
	return out
}

func drawChart(id, title, unit string, fixedMax float64, lines []chartSeries) debugChart {
	top := fixedMax
	if top == 0 {
		for _, l := range lines {
			for _, v := range l.values {
				if !math.IsNaN(v) {
					top = max(top, v)
				}
			}
		}
		top = niceCeil(top)
	}
	c := debugChart{ID: id, Title: title, Max: fmtChartValue(top, unit)}
	for i, l := range lines {
		last := "—"
		for j := len(l.values) - 1; j >= 0; j-- {
			if !math.IsNaN(l.values[j]) {
				last = fmtChartValue(l.values[j], unit)
				break
			}
		}
		c.Lines = append(c.Lines, debugLine{Label: l.label, Class: "s" + strconv.Itoa(i%4), Path: chartPath(l.values, top), Last: last})
	}
	return c
}

// niceCeil is the smallest of 1, 2 or 5 times a power of ten that is at
// least m; 1 for m ≤ 0.
func niceCeil(m float64) float64 {
	if m <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(m)))
	for _, f := range []float64{1, 2, 5, 10} {
		if f*p >= m {
			return f * p
		}
	}
	return 10 * p
}

// chartPath draws values on a scale of top, the last at the right edge, in
// relative steps ("l4 -3", a level stretch as one "h"); NaN lifts the pen,
// and a point alone is drawn as a dot ("h0", with round caps).
func chartPath(values []float64, top float64) string {
	var b strings.Builder
	n, run, y0, level := len(values), 0, 0, 0
	flush := func() {
		if level > 0 {
			b.WriteString("h" + strconv.Itoa(level))
			level = 0
		}
	}
	for i, v := range values {
		if math.IsNaN(v) {
			flush()
			if run == 1 {
				b.WriteString("h0")
			}
			run = 0
			continue
		}
		y := int(math.Round(chartH - 2 - min(v, top)/top*(chartH-4)))
		switch {
		case run == 0:
			b.WriteString("M" + strconv.Itoa(chartW-(n-1-i)*chartStep) + " " + strconv.Itoa(y))
		case y == y0:
			level += chartStep
		default:
			flush()
			b.WriteString("l" + strconv.Itoa(chartStep))
			if y > y0 {
				b.WriteByte(' ')
			}
			b.WriteString(strconv.Itoa(y - y0))
		}
		y0 = y
		run++
	}
	flush()
	if run == 1 {
		b.WriteString("h0")
	}
	return b.String()
}

// fmtChartValue formats a chart's value in its unit.
func fmtChartValue(v float64, unit string) string {
	switch unit {
	case "%":
		return strconv.FormatFloat(v, 'f', 1, 64) + "%"
	case "ms":
		d := 0
		if v < 1 {
			d = 2
		} else if v < 10 {
			d = 1
		}
		return strconv.FormatFloat(v, 'f', d, 64) + " ms"
	case "/s":
		d := 0
		if v < 10 {
			d = 1
		}
		return strconv.FormatFloat(v, 'f', d, 64) + "/s"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}
