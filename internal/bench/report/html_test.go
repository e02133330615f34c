package report

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestHTMLReport(t *testing.T) {
	rep := syntheticReport()
	rep.Protos[0].Modes[0].Mode = `per-request<script>alert(1)</script>` // must come out escaped
	var b bytes.Buffer
	if err := WriteHTML(&b, rep); err != nil {
		t.Fatal(err)
	}
	page := b.String()

	if !strings.HasPrefix(page, "<!DOCTYPE html>") || !strings.HasSuffix(strings.TrimSpace(page), "</html>") {
		t.Error("not a complete HTML document")
	}
	for _, bad := range []string{"<script", "ZgotmplZ", " src=", " href=", "@import", "url(", "p99.9 max"} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q: it must be self-contained, script-free and fully escaped", bad)
		}
	}
	if !strings.Contains(page, "&lt;script&gt;") {
		t.Error("a mode name with markup was not escaped")
	}
	// Per protocol: one percentile chart and two bar charts.
	if got, want := strings.Count(page, "<svg "), 3*len(rep.Protos); got != want {
		t.Errorf("got %d svg elements, want %d", got, want)
	}
	var modes int
	for _, p := range rep.Protos {
		modes += len(p.Modes)
	}
	if got := strings.Count(page, "<polyline "); got != modes {
		t.Errorf("got %d latency lines, want one per run (%d)", got, modes)
	}
	for _, want := range []string{"latency (log scale)", "99.9%", "throughput (req/s)", "connections accepted by the server", "warmpool-h2", "proxy by itself"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// Every polyline's points lie inside the plot area.
	for _, m := range regexp.MustCompile(`points="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		for _, pt := range strings.Fields(m[1]) {
			var x, y float64
			if _, err := fmt.Sscanf(pt, "%g,%g", &x, &y); err != nil || x < chartLeft || x > chartW-chartRight || y < chartTop || y > chartH-chartBottom {
				t.Errorf("point %q outside the plot (err %v)", pt, err)
			}
		}
	}
	if err := checkBalanced(page); err != nil {
		t.Error(err)
	}
}

// checkBalanced reports the first element that is not closed in order. It
// knows only what the report uses: void elements and self-closing tags.
func checkBalanced(page string) error {
	void := []string{"meta", "br", "hr", "img", "input", "link"}
	var stack []string
	for _, m := range regexp.MustCompile(`<(/?)([a-zA-Z][a-zA-Z0-9]*)[^>]*?(/?)>`).FindAllStringSubmatch(page, -1) {
		closing, name, self := m[1] == "/", strings.ToLower(m[2]), m[3] == "/"
		switch {
		case self || slices.Contains(void, name):
		case !closing:
			stack = append(stack, name)
		case len(stack) == 0 || stack[len(stack)-1] != name:
			return fmt.Errorf("</%s> closes %v", name, stack)
		default:
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) > 0 {
		return fmt.Errorf("unclosed elements %v", stack)
	}
	return nil
}

func TestDecadeLabel(t *testing.T) {
	for e, want := range []string{"1µs", "10µs", "100µs", "1ms", "10ms", "100ms", "1s", "10s", "100s", "1000s"} {
		if got := decadeLabel(e); got != want {
			t.Errorf("decadeLabel(%d): got %q, want %q", e, got, want)
		}
	}
}
