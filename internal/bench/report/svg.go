package report

import (
	"math"
	"strconv"
	"strings"

	"github.com/warmpool/warmpool/internal/bench"
)

// The geometry of the HTML report's charts, computed here so that the
// template only places what it is given.

// modeColors gives each mode the same colour in every chart.
var modeColors = map[string]string{
	bench.ModePerRequest: "#d62728",
	bench.ModeDefault:    "#ff7f0e",
	bench.ModeDefaultH1:  "#bcbd22",
	bench.ModeTuned:      "#7f7f7f",
	bench.ModeWarmpool:   "#1f77b4",
	bench.ModeWarmpoolH2: "#2ca02c",
}

func modeColor(m string) string {
	if c, ok := modeColors[m]; ok {
		return c
	}
	return "#000000"
}

// Percentile chart layout, in SVG user units.
const (
	chartW, chartH                    = 720, 360
	chartLeft, chartRight             = 70, 110 // the right margin holds the legend
	chartTop, chartBottom             = 16, 40
	chartMaxNines                     = 4   // 99.99%
	chartMaxX                         = 4.6 // where "max" sits
	barW, barRowH, barLeft, barValueW = 720, 22, 110, 110
	barTop                            = 8
)

type svgPoint struct{ X, Y float64 }

type svgTick struct {
	X, Y  float64
	Label string
}

type svgLine struct {
	Mode, Color string
	Points      string // "x,y x,y ..."
}

// latencyChart is a percentile curve per mode: x is the percentile on a
// "nines" scale (90%, 99%, 99.9%...), y the latency on a log scale.
type latencyChart struct {
	W, H                 int
	PlotX0, PlotY0       float64
	PlotX1, PlotY1       float64
	XTicks, YTicks       []svgTick
	Lines                []svgLine
	Legend               []svgTick // X, Y of each legend entry; Label the mode
	LegendColors         []string
	XLabel, YLabel       string
	XLabelPos, YLabelPos svgPoint
}

// nines maps a percentile to the chart's x scale: 90% → 1, 99% → 2, …
func nines(p float64) float64 {
	if p >= 100 {
		return chartMaxX
	}
	return min(-math.Log10(1-p/100), chartMaxNines)
}

func newLatencyChart(modes []bench.ModeResult) *latencyChart {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, m := range modes {
		for _, c := range m.LatencyCurve {
			lo = min(lo, float64(c.Us))
			hi = max(hi, float64(c.Us))
		}
	}
	if math.IsInf(lo, 1) {
		return nil // nothing succeeded
	}
	yMin := math.Floor(math.Log10(max(lo, 1)))
	yMax := math.Ceil(math.Log10(max(hi, 1)))
	if yMax <= yMin {
		yMax = yMin + 1
	}
	c := &latencyChart{
		W: chartW, H: chartH,
		PlotX0: chartLeft, PlotY0: chartTop,
		PlotX1: chartW - chartRight, PlotY1: chartH - chartBottom,
		XLabel: "percentile", YLabel: "latency (log scale)",
	}
	c.XLabelPos = svgPoint{(c.PlotX0 + c.PlotX1) / 2, chartH - 6}
	c.YLabelPos = svgPoint{14, (c.PlotY0 + c.PlotY1) / 2}
	x := func(p float64) float64 { return c.PlotX0 + nines(p)/chartMaxX*(c.PlotX1-c.PlotX0) }
	y := func(us float64) float64 {
		v := (math.Log10(max(us, 1)) - yMin) / (yMax - yMin)
		return c.PlotY1 - v*(c.PlotY1-c.PlotY0)
	}
	for _, t := range []struct {
		p     float64
		label string
	}{{0, "0%"}, {90, "90%"}, {99, "99%"}, {99.9, "99.9%"}, {99.99, "99.99%"}, {100, "max"}} {
		c.XTicks = append(c.XTicks, svgTick{X: round1(x(t.p)), Y: c.PlotY1, Label: t.label})
	}
	for e := yMin; e <= yMax; e++ {
		c.YTicks = append(c.YTicks, svgTick{X: c.PlotX0, Y: round1(y(math.Pow(10, e))), Label: decadeLabel(int(e))})
	}
	for i, m := range modes {
		var pts []string
		for _, cp := range m.LatencyCurve {
			pts = append(pts, strconv.FormatFloat(round1(x(cp.Percentile)), 'f', -1, 64)+","+
				strconv.FormatFloat(round1(y(float64(cp.Us))), 'f', -1, 64))
		}
		c.Lines = append(c.Lines, svgLine{Mode: m.Mode, Color: modeColor(m.Mode), Points: strings.Join(pts, " ")})
		c.Legend = append(c.Legend, svgTick{X: c.PlotX1 + 12, Y: c.PlotY0 + 8 + float64(i)*18, Label: m.Mode})
		c.LegendColors = append(c.LegendColors, modeColor(m.Mode))
	}
	return c
}

// barChart is one horizontal bar per mode.
type barChart struct {
	Title string
	W, H  int
	Bars  []svgBar
}

type svgBar struct {
	Mode, Color, Value string
	Y, Width           float64
	LabelX, ValueX     float64
	TextY              float64
	BarX               float64
}

// newBarChart draws value(m) per mode; modes whose value is unknown (ok
// false) are left out, and nil is returned if none is known.
func newBarChart(title string, modes []bench.ModeResult, value func(*bench.ModeResult) (float64, string, bool)) *barChart {
	type row struct {
		mode, label string
		v           float64
	}
	var rows []row
	top := 0.0
	for i := range modes {
		if v, label, ok := value(&modes[i]); ok {
			rows = append(rows, row{modes[i].Mode, label, v})
			top = max(top, v)
		}
	}
	if len(rows) == 0 {
		return nil
	}
	span := float64(barW - barLeft - barValueW)
	b := &barChart{Title: title, W: barW, H: barTop*2 + len(rows)*barRowH}
	for i, r := range rows {
		w := 0.0
		if top > 0 {
			w = max(r.v/top*span, 1)
		}
		yy := float64(barTop + i*barRowH)
		b.Bars = append(b.Bars, svgBar{
			Mode: r.mode, Color: modeColor(r.mode), Value: r.label,
			Y: yy, Width: round1(w), BarX: barLeft,
			LabelX: barLeft - 8, ValueX: round1(barLeft + w + 6), TextY: yy + 15,
		})
	}
	return b
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }

// decadeLabel names 10^e microseconds: 1µs, 10µs, … 1ms, … 1s, 10s.
func decadeLabel(e int) string {
	units := []string{"µs", "ms", "s"}
	u := min(max(e/3, 0), len(units)-1)
	return strconv.Itoa(int(math.Pow10(e-3*u))) + units[u]
}
