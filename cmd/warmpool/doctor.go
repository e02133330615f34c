package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
	"strings"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/doctor"
)

const doctorSynopsis = `Usage: warmpool doctor URL [flags]

Check how a warmpool client's pool fares against URL: POST -data to it -n
times over -c workers sharing one client, as "warmpool post -n" does, bounded
by -n and -timeout; then print the load's figures, the pool's (connections
created and closed by reason, reuse, peak concurrency, waits for a connection,
dial failures, retries) and the pool doctor's findings (doctor.Diagnose):
each problem seen, the figure that showed it and the setting to change. Or,
when there is none, "doctor: no findings (pool healthy)".

The client is built as post builds it: its settings from the http_client
block of -config and the WARMPOOL_* variables, its token from -token,
$WARMPOOL_TOKEN or the auth block of -config. Give it your service's
settings to check them.

A steady load keeps every connection busy. Problems of idle connections (a
server closing them before keepalive_expiry; connections expiring between
bursts) show only when the load has gaps: -pause makes each worker wait
between its requests, and a pause longer than the server's idle timeout
shows what happens then.

Exit status: 0 when no finding is an error (warnings do not fail the run),
1 when a finding has severity "error" (requests failed because of it: pool
timeouts, dial failures, retry budget refusals, token failures), when any
request failed, or when the run stopped early; 2 for bad usage.
`

const doctorExamples = `Examples:
  warmpool doctor http://127.0.0.1:8080/answer
  warmpool doctor https://api.internal:8443/answer -config client.yaml -n 200 -c 16 -format json
  warmpool serve -idle-timeout 1s &
  warmpool doctor http://127.0.0.1:8080/answer -n 40 -c 4 -pause 1500ms
`

// runDoctor implements "warmpool doctor".
func runDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseDoctor(args, stdout)
	if err != nil {
		return err
	}
	client, err := newClient("doctor", clientFlags{f.configPath, f.token, f.insecure}, stderr)
	if err != nil {
		return err
	}
	defer client.Close()

	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	s := runLoad(ctx, "doctor", client, f, stderr)
	if err := writeSummary(stdout, s, f.format, true); err != nil {
		return err
	}
	var bad int
	for _, fd := range s.Findings {
		if fd.Severity == doctor.SeverityError {
			bad++
		}
	}
	var findingsErr error
	if bad > 0 {
		findingsErr = fmt.Errorf("warmpool doctor: %d %s of severity error", bad, plural(bad, "finding"))
	}
	return errors.Join(s.failure("doctor"), findingsErr)
}

func parseDoctor(args []string, stdout io.Writer) (postFlags, error) {
	cmd := newCommand("doctor", doctorSynopsis, doctorExamples)
	var f postFlags
	f.define(cmd.fs)
	cmd.fs.IntVar(&f.n, "n", 500, "the number of requests to send")
	cmd.fs.IntVar(&f.c, "c", 32, "the number of concurrent workers")
	if err := f.parse(cmd, args, stdout); err != nil {
		return f, err
	}
	if f.n < 1 {
		return f, usagef("doctor", "-n must be at least 1")
	}
	f.c = min(f.c, f.n)
	return f, nil
}

// finding is a doctor.Finding as -format json prints it.
type finding struct {
	Rule     string          `json:"rule"`
	Severity doctor.Severity `json:"severity"`
	Host     string          `json:"host,omitempty"` // "" for the whole client
	Message  string          `json:"message"`
	Fix      string          `json:"fix"`
	Value    float64         `json:"value"`
}

func newFindings(fs []doctor.Finding) []finding {
	out := make([]finding, 0, len(fs))
	for _, f := range fs {
		out = append(out, finding(f))
	}
	return out
}

// writeFindings prints the findings, each with its fix, or that there is
// none.
func writeFindings(b *strings.Builder, fs []finding) {
	if len(fs) == 0 {
		b.WriteString("doctor: no findings (pool healthy)\n")
		return
	}
	fmt.Fprintf(b, "doctor: %d %s\n", len(fs), plural(len(fs), "finding"))
	for _, f := range fs {
		fmt.Fprintf(b, "%s %s", f.Severity, f.Rule)
		if f.Host != "" {
			fmt.Fprintf(b, " %s", f.Host)
		}
		fmt.Fprintf(b, "\n  %s\n  fix: %s\n", f.Message, f.Fix)
	}
}

// poolSummary is the client's warmpool.Stats at the end of the run, before
// the client is closed: in JSON, Stats under its own names, with the reuse
// rate. post prints one line of it; doctor prints it all.
type poolSummary struct {
	warmpool.Stats
	ReuseRate float64 `json:"reuse_rate"`
}

// nonZero lists the counts of all that are not zero, most first, the
// table's order among equals, as "server 2, unused 1".
func nonZero(all iter.Seq2[string, int64]) string {
	type count struct {
		name string
		n    int64
	}
	var cs []count
	for name, n := range all {
		if n != 0 {
			cs = append(cs, count{name, n})
		}
	}
	slices.SortStableFunc(cs, func(a, b count) int { return cmp.Compare(b.n, a.n) })
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = fmt.Sprintf("%s %d", c.name, c.n)
	}
	return strings.Join(parts, ", ")
}

// writePoolDetail prints the pool figures beyond post's one line. Connections
// closed and dials failed are broken down by warmpool's tables of close
// reasons and dial-failure kinds, whatever they hold.
func writePoolDetail(b *strings.Builder, p poolSummary) {
	fmt.Fprintf(b, "reuse         %d of %d requests on a connection that had served before; peak %d in flight\n",
		p.Reused, p.Requests, p.PeakInFlight)
	fmt.Fprintf(b, "closed        %d", p.Closed)
	if by := nonZero(p.ClosedBy.All()); by != "" {
		fmt.Fprintf(b, " (%s)", by)
	}
	b.WriteString("\n")
	fmt.Fprintf(b, "waits         %d for a free connection, %s in all\n", p.Waits, roundDuration(p.WaitTime))
	fmt.Fprintf(b, "dials         %d failed", p.DialFailures.Total())
	if by := nonZero(p.DialFailures.All()); by != "" {
		fmt.Fprintf(b, " (%s)", by)
	}
	fmt.Fprintf(b, ", %d held back (a connection came free first)\n", p.DialsAvoided)
	fmt.Fprintf(b, "retries       %d, %d refused by the retry budget\n", p.Retries, p.BudgetRefusals)
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
