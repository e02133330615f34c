package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// shareOf turns counts into shares of their sum, rounded to 0.001.
func shareOf(n []int64) []float64 {
	var sum int64
	for _, v := range n {
		sum += v
	}
	out := make([]float64, len(n))
	for i, v := range n {
		if sum > 0 {
			out[i] = round3(float64(v) / float64(sum))
		}
	}
	return out
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

func delta(a, b []int64) []int64 {
	out := make([]int64, len(b))
	for i := range b {
		out[i] = b[i] - a[i]
	}
	return out
}

// fleetPhases splits the samples at the events and gives each backend's share
// in each part.
func fleetPhases(samples []fleetSample, s FleetSettings) []FleetPhase {
	end := samples[len(samples)-1].at
	cuts := []time.Duration{0}
	for _, at := range []time.Duration{s.AddAt, s.KillAt} {
		if at > 0 && !slices.Contains(cuts, at) {
			cuts = append(cuts, at)
		}
	}
	slices.Sort(cuts)
	cuts = append(cuts, end)
	var out []FleetPhase
	for k := 0; k+1 < len(cuts); k++ {
		from := sampleAtOrAfter(samples, cuts[k])
		to := sampleAtOrAfter(samples, cuts[k+1])
		out = append(out, FleetPhase{
			FromS: round3(cuts[k].Seconds()), ToS: round3(cuts[k+1].Seconds()),
			Share: shareOf(delta(samples[from].served, samples[to].served)),
		})
	}
	return out
}

// sampleAtOrAfter is the index of the first sample taken at or after at,
// or the last one.
func sampleAtOrAfter(samples []fleetSample, at time.Duration) int {
	for i, sm := range samples {
		if sm.at >= at {
			return i
		}
	}
	return len(samples) - 1
}

// shareWindow is the window over which a new backend's share is judged.
const shareWindow = 300 * time.Millisecond

// timeToShare is how long after AddAt backend idx first took 80 % of an
// even share of a shareWindow that began after the event; -1 if never.
func timeToShare(samples []fleetSample, s FleetSettings, idx int) float64 {
	for i, sm := range samples {
		if sm.at < s.AddAt+shareWindow {
			continue
		}
		j := i
		for j > 0 && sm.at-samples[j].at < shareWindow {
			j--
		}
		if samples[j].at < s.AddAt {
			continue
		}
		live := s.Backends + 1
		if s.KillAt > 0 && samples[j].at >= s.KillAt {
			live--
		}
		if sh := shareOf(delta(samples[j].served, sm.served)); sh[idx] >= 0.8/float64(live) {
			return round3((sm.at - s.AddAt).Seconds())
		}
	}
	return -1
}

// WriteFleetJSON writes rep as indented JSON.
func WriteFleetJSON(w io.Writer, rep *FleetReport) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// WriteFleetText writes rep as tables: each backend's share per mode, over
// the whole run and between the events, and how fast traffic moved.
func WriteFleetText(w io.Writer, rep *FleetReport) error {
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

func modeLabel(m FleetModeResult) string {
	if m.Balancer != "" && m.Mode == ModeWarmpool {
		return m.Mode + " (" + m.Balancer + ")"
	}
	return m.Mode
}

func countKind(ev []FleetEvent, kind string) int {
	n := 0
	for _, e := range ev {
		if e.Kind == kind {
			n++
		}
	}
	return n
}
