package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/warmpool/warmpool/internal/bench"
)

// WriteFleetJSON writes rep as indented JSON.
func WriteFleetJSON(w io.Writer, rep *bench.FleetReport) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// WriteFleetText writes rep as tables: each backend's share per mode, over
// the whole run and between the events, and how fast traffic moved.
func WriteFleetText(w io.Writer, rep *bench.FleetReport) error {
	var b strings.Builder
	fmt.Fprintf(&b, "warmpool bench: %d backends behind %s, %d workers, %gs per mode\n",
		len(rep.Backends)-countKind(rep.Events, "add"), rep.Name, rep.Concurrency, rep.DurationS)
	fmt.Fprintf(&b, "  the name resolves to 127.0.0.1 … 127.0.0.%d; net/http dials the first address that answers; warmpool resolves every %gs (resolve_interval)\n",
		len(rep.Backends)-countKind(rep.Events, "add"), rep.ResolveS)
	for _, e := range rep.Events {
		what := map[string]string{"add": "joins the name", "kill": "is killed (closed abruptly; left in the name)"}[e.Kind]
		fmt.Fprintf(&b, "  at %gs %s %s\n", e.AtS, e.Backend, what)
	}
	b.WriteString("\nShare of requests per backend (server-side counts):\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "mode\tphase\t")
	for _, a := range rep.Backends {
		fmt.Fprintf(tw, "%s\t", a)
	}
	fmt.Fprintln(tw)
	for _, m := range rep.Modes {
		fmt.Fprintf(tw, "%s\tall\t", modeLabel(m))
		for _, s := range m.Share {
			fmt.Fprintf(tw, "%.1f %%\t", 100*s)
		}
		fmt.Fprintln(tw)
		if len(m.Phases) > 1 {
			for _, p := range m.Phases {
				fmt.Fprintf(tw, "\t%.1f–%.1fs\t", p.FromS, p.ToS)
				for _, s := range p.Share {
					fmt.Fprintf(tw, "%.1f %%\t", 100*s)
				}
				fmt.Fprintln(tw)
			}
		}
	}
	tw.Flush()

	b.WriteString("\nRequests, errors and how fast traffic moved:\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "mode\trequests\treq/s\terrors\tnew backend had its share after\terrors after the kill\tlast error after the kill\t")
	for _, m := range rep.Modes {
		share := "-"
		if countKind(rep.Events, "add") > 0 {
			share = "never"
			if m.NewBackendShareAfterS >= 0 {
				share = fmt.Sprintf("%.1fs", m.NewBackendShareAfterS)
			}
		}
		kill, last := "-", "-"
		if countKind(rep.Events, "kill") > 0 {
			kill = fmt.Sprint(m.ErrorsAfterKill)
			last = "none"
			if m.ErrorsAfterKill > 0 {
				last = fmt.Sprintf("%.2fs", m.ErrorsStoppedAfterS)
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%d\t%s\t%s\t%s\t\n", modeLabel(m), m.Requests, m.ReqPerS, m.Errors, share, kill, last)
	}
	tw.Flush()
	for _, m := range rep.Modes {
		for _, e := range m.ErrorSamples {
			fmt.Fprintf(&b, "  %s error: %s\n", m.Mode, e)
		}
	}
	b.WriteString("\n\"Had its share\": the first 300 ms window after the add event in which the new backend took ≥ 80 % of an even share.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func modeLabel(m bench.FleetModeResult) string {
	if m.Balancer != "" && m.Mode == bench.ModeWarmpool {
		return m.Mode + " (" + m.Balancer + ")"
	}
	return m.Mode
}

func countKind(ev []bench.FleetEvent, kind string) int {
	n := 0
	for _, e := range ev {
		if e.Kind == kind {
			n++
		}
	}
	return n
}
