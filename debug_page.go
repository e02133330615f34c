package warmpool

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/warmpool/warmpool/internal/diaghook"
)

// The pool page is rendered here from the same figures stats.json gives,
// read through the same JSON keys (statsFields), so that the page's first
// render and the script's updates (debug_page.js, which mirrors the
// formatting and the charts below) show the same text.

//go:embed debug_page.tmpl
var debugPageSource string

//go:embed debug_page.js
var debugPageScript string

//go:embed debug_page.css
var debugPageStyle string

var debugPageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"cell":     fmtCell,
	"severity": severityClass,
}).Parse(debugPageSource))

// debugPageCSP allows the page its own inline script and style, by hash,
// and requests to its own origin (stats.json): nothing else, so even text
// that escaped escaping could run nothing.
var debugPageCSP = "default-src 'none'; script-src " + cspHash(debugPageScript) +
	"; style-src " + cspHash(debugPageStyle) + "; connect-src 'self'; img-src 'self' data:; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func cspHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// statsField is one figure of Stats or HostStats on the page, by its JSON
// key; Fmt says how to show it (fmtCell).
type statsField struct{ Key, Fmt, Label string }

// clientFields are shown for a client's totals, hostFields per host.
var (
	clientFields = []statsField{
		{"open", "n", "open"}, {"in_use", "n", "active"}, {"idle", "n", "idle"}, {"dialing", "n", "dialing"},
		{"in_flight", "n", "in flight"}, {"waiting", "n", "waiting"}, {"peak_in_flight", "n", "peak in flight"},
		{"requests", "n", "attempts"}, {"reuse", "reuse", "reuse rate"}, {"created", "n", "created"},
		{"closed", "n", "closed"}, {"closed_by", "kinds", "closed by reason"},
		{"failures_by_kind", "kinds", "failed attempts"}, {"dial_failures", "kinds", "dial failures"},
		{"pool_timeouts", "n", "pool timeouts"}, {"waits", "n", "waits"},
		{"calls", "n", "calls"}, {"calls_failed", "n", "calls failed"}, {"retries", "n", "retries"},
		{"budget_refusals", "n", "budget refusals"}, {"token_fetches", "n", "token fetches"},
		{"token_fetch_failures", "n", "token failures"}, {"learned_idle_timeout_ns", "idle", "learned idle timeout"},
		{"concurrency_limit", "n", "concurrency limit"}, {"overloaded", "n", "refused: overloaded"},
		{"throttled", "n", "refused: throttled"}, {"circuit_rejections", "n", "refused: circuit open"},
		{"deadline_rejections", "n", "refused: deadline"}, {"hedges", "n", "hedges"}, {"hedge_wins", "n", "hedge wins"},
	}
	hostFields = []statsField{
		{"endpoint_state", "s", "state"}, {"ejections", "n", "ejections"}, {"protocol", "s", "protocol"},
		{"open", "n", "open"}, {"in_use", "n", "active"}, {"idle", "n", "idle"}, {"dialing", "n", "dialing"},
		{"in_flight", "n", "in flight"}, {"waiting", "n", "waiting"}, {"requests", "n", "attempts"},
		{"reuse", "reuse", "reuse"}, {"created", "n", "created"}, {"closed", "n", "closed"},
		{"failures_by_kind", "kinds", "failed attempts"}, {"dial_failures", "kinds", "dial failures"},
		{"learned_idle_timeout_ns", "idle", "learned idle timeout"},
		{"circuit_state", "s", "circuit"}, {"concurrency_limit", "n", "limit"}, {"overloaded", "n", "overloaded"},
		{"circuit_rejections", "n", "circuit fast-fails"},
	}
)

// debugPage is what the template renders.
type debugPage struct {
	*debugSnapshot
	Script       template.JS
	Style        template.CSS
	ClientFields []statsField
	HostFields   []statsField
	Views        []debugClientPage
}

type debugClientPage struct {
	Index    int
	Name     string
	Targets  string         // the hosts it calls, for the heading
	Stats    map[string]any // Stats as stats.json has it
	Hosts    []debugHostPage
	Charts   []debugChart
	OpenAll  bool // few hosts: their charts open
	Doctor   debugDoctor
	Settings []debugSetting
}

type debugHostPage struct {
	Key    string
	Name   string // the host name of an endpoint
	Stats  map[string]any
	Charts []debugChart
}

type debugSetting struct{ Key, Value string }

func renderDebugPage(w io.Writer, snap *debugSnapshot) error {
	p := debugPage{
		debugSnapshot: snap,
		Script:        template.JS(debugPageScript),
		Style:         template.CSS(debugPageStyle),
		ClientFields:  clientFields,
		HostFields:    hostFields,
	}
	for i := range snap.Clients {
		p.Views = append(p.Views, newDebugClientPage(i, &snap.Clients[i]))
	}
	var buf bytes.Buffer
	if err := debugPageTmpl.Execute(&buf, &p); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

func newDebugClientPage(i int, cv *debugClientView) debugClientPage {
	cp := debugClientPage{Index: i, Name: cv.Name, Stats: jsonFields(cv.Stats), Doctor: cv.Doctor}
	cp.Charts = debugCharts(&cv.History, &cv.History.Total)
	hosts := slices.Sorted(maps.Keys(cv.History.Hosts))
	cp.OpenAll = len(hosts) <= 3
	all := jsonFields(cv.Stats.Hosts)
	for _, key := range hosts {
		s := cv.History.Hosts[key]
		m, _ := all[key].(map[string]any)
		cp.Hosts = append(cp.Hosts, debugHostPage{Key: key, Name: cv.Stats.Hosts[key].HostName, Stats: m,
			Charts: debugCharts(&cv.History, &s)})
	}
	switch len(hosts) {
	case 0:
		cp.Targets = "no requests yet"
	case 1:
		cp.Targets = "calls " + hosts[0]
	default:
		cp.Targets = "calls " + strconv.Itoa(len(hosts)) + " hosts"
	}
	for _, k := range slices.Sorted(maps.Keys(cv.Settings)) {
		cp.Settings = append(cp.Settings, debugSetting{k, cv.Settings[k]})
	}
	return cp
}

// jsonFields is v as stats.json has it, for fmtCell.
func jsonFields(v any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if d.Decode(&m) != nil {
		return nil
	}
	return m
}

// fmtCell formats the figure key of m as f says; debug_page.js's cell()
// does the same:
//
//	n      an integer
//	s      a string, "—" if empty
//	reuse  reused / requests as a percentage, "—" before any request
//	kinds  the non-zero counts of an object, "refused 3, reset 1", by name
//	idle   the learned idle timeout in seconds and how it was learned
func fmtCell(m map[string]any, f statsField) string {
	switch f.Fmt {
	case "n":
		if n, ok := m[f.Key].(json.Number); ok {
			return n.String()
		}
		return "0"
	case "s":
		if s, _ := m[f.Key].(string); s != "" {
			return s
		}
	case "reuse":
		req, _ := numField(m, "requests")
		reused, _ := numField(m, "reused")
		if req > 0 {
			return strconv.FormatFloat(reused*100/req, 'f', 1, 64) + "%"
		}
	case "kinds":
		obj, _ := m[f.Key].(map[string]any)
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			if n, _ := obj[k].(json.Number); n.String() != "0" && n != "" {
				parts = append(parts, k+" "+n.String())
			}
		}
		if len(parts) > 0 {
			return strings.Join(parts, ", ")
		}
	case "idle":
		if ns, _ := numField(m, f.Key); ns > 0 {
			s := strconv.FormatFloat(float64(int64(ns/1e6+0.5))/1000, 'f', -1, 64) + "s"
			if from, _ := m["learned_idle_timeout_from"].(string); from != "" {
				s += " (" + from + ")"
			}
			return s
		}
	}
	return "—"
}

func numField(m map[string]any, key string) (float64, bool) {
	n, ok := m[key].(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil
}

// severityClass maps a finding's severity to a class of the page's style.
func severityClass(s diaghook.Severity) string {
	switch s {
	case "error", "warning", "info":
		return string(s)
	}
	return "info"
}
