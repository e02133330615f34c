package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

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
// the client is closed, summed over hosts. post prints the first five
// figures; doctor prints them all.
type poolSummary struct {
	Created      int64   `json:"connections_created"`
	ReuseRate    float64 `json:"reuse_rate"`
	Open         int64   `json:"open"`
	Idle         int64   `json:"idle"`
	PoolTimeouts int64   `json:"pool_timeouts"`

	Requests     int64            `json:"requests"` // attempts that got a connection
	Reused       int64            `json:"reused"`   // of those, on a connection that had served before
	PeakInFlight int64            `json:"peak_in_flight"`
	Closed       int64            `json:"connections_closed"`
	ClosedBy     map[string]int64 `json:"closed_by,omitempty"` // by reason, as Hooks.ConnClosed names them; zeros left out
	DialsAvoided int64            `json:"dials_avoided"`
	DialFailures int64            `json:"dial_failures"`
	Waits        int64            `json:"waits"`
	WaitSeconds  float64          `json:"wait_seconds"`
	Retries      int64            `json:"retries"`
	// RetryBudgetRefusals are retries the retry budget held back.
	RetryBudgetRefusals int64 `json:"retry_budget_refusals"`
}

func newPoolSummary(st warmpool.Stats) poolSummary {
	p := poolSummary{
		Created:             st.Created,
		ReuseRate:           st.ReuseRate(),
		Open:                st.Open,
		Idle:                st.Idle,
		PoolTimeouts:        st.PoolTimeouts,
		Requests:            st.Requests,
		Reused:              st.Reused,
		PeakInFlight:        st.PeakInFlight,
		Closed:              st.Closed,
		DialsAvoided:        st.DialsAvoided,
		DialFailures:        st.DialFailures.Total(),
		Waits:               st.Waits,
		WaitSeconds:         st.WaitTime.Seconds(),
		Retries:             st.Retries,
		RetryBudgetRefusals: st.BudgetRefusals,
	}
	for _, r := range closeReasons(st.ClosedBy) {
		if r.n != 0 {
			if p.ClosedBy == nil {
				p.ClosedBy = map[string]int64{}
			}
			p.ClosedBy[r.name] = r.n
		}
	}
	return p
}

// reasonCount is the count of connections closed for one reason.
type reasonCount struct {
	name string
	n    int64
}

// closeReasons lists the reasons, those that cost a new connection first, by
// the names of Hooks.ConnClosed and the prom package.
func closeReasons(r warmpool.CloseReasons) []reasonCount {
	return []reasonCount{
		{"server", r.Server}, {"idle_expiry", r.IdleExpiry}, {"trim", r.Trim}, {"max_age", r.MaxAge},
		{"error", r.Error}, {"other", r.Other}, {"unused", r.Unused}, {"client", r.Client},
	}
}

// writePoolDetail prints the pool figures beyond post's one line.
func writePoolDetail(b *strings.Builder, p poolSummary) {
	fmt.Fprintf(b, "reuse         %d of %d requests on a connection that had served before; peak %d in flight\n",
		p.Reused, p.Requests, p.PeakInFlight)
	var by []string
	for _, r := range closeReasons(warmpool.CloseReasons{}) {
		if n := p.ClosedBy[r.name]; n != 0 {
			by = append(by, fmt.Sprintf("%s %d", r.name, n))
		}
	}
	fmt.Fprintf(b, "closed        %d", p.Closed)
	if len(by) > 0 {
		fmt.Fprintf(b, " (%s)", strings.Join(by, ", "))
	}
	b.WriteString("\n")
	fmt.Fprintf(b, "waits         %d for a free connection, %s in all\n",
		p.Waits, roundDuration(time.Duration(p.WaitSeconds*float64(time.Second))))
	fmt.Fprintf(b, "dials         %d failed, %d held back (a connection came free first)\n", p.DialFailures, p.DialsAvoided)
	fmt.Fprintf(b, "retries       %d, %d refused by the retry budget\n", p.Retries, p.RetryBudgetRefusals)
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
