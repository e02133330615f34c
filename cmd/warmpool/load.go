package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/warmpool/warmpool"

	"github.com/warmpool/warmpool/doctor"
	"github.com/warmpool/warmpool/internal/load"
	"github.com/warmpool/warmpool/internal/redact"
)

// kindErr is the first error of a kind, as warmpool.ErrorKind names it.
type kindErr struct {
	kind string
	err  error
}

// workerResult is what one worker saw; workers share nothing while running.
type workerResult struct {
	sent, ok  int
	errs      errorCounts
	codes     map[string]int   // status code → count
	latencies []time.Duration  // of successful requests
	first     map[string]error // the first error of each kind
}

func (r *workerResult) record(rec load.Record) {
	r.sent++
	if rec.Err == nil {
		r.ok++
		r.latencies = append(r.latencies, rec.Latency())
		return
	}
	k := warmpool.ErrorKind(rec.Err)
	r.errs[k]++
	if rec.Status != 0 {
		r.codes[strconv.Itoa(rec.Status)]++
	}
	if _, seen := r.first[k]; !seen {
		r.first[k] = rec.Err
	}
}

// runLoad runs the load of a -n run of cmd, telling stderr what it sends
// and, for each kind of error that occurred, how many and the first.
func runLoad(ctx context.Context, cmd string, client *warmpool.Client, f postFlags, stderr io.Writer) summary {
	fmt.Fprintf(stderr, "warmpool %s: sending %d %s over %d %s to %s\n", cmd, f.n, plural(f.n, "request"), f.c, plural(f.c, "worker"), redact.URL(f.url))
	s, firstErrs := runPosts(ctx, client, f)
	for _, e := range firstErrs {
		fmt.Fprintf(stderr, "warmpool %s: %s\n", cmd, kindLine(s.Errors[e.kind], e.kind, explain(ctx, e.err, f.timeout)))
	}
	return s
}

// kindLine tells how many requests failed with kind, and the first's error:
// "3 requests failed with kind refused; the first: …".
func kindLine(n int, kind, first string) string {
	if n == 1 {
		return fmt.Sprintf("1 request failed with kind %s: %s", kind, first)
	}
	return fmt.Sprintf("%d requests failed with kind %s; the first: %s", n, kind, first)
}

// runPosts sends f.n requests over f.c workers through the tooling's one
// load loop (internal/load), until done, -timeout or ctx ends, and
// summarizes them with the client's pool figures and the pool doctor's
// findings. It also returns an example error of each kind seen, in
// warmpool.ErrorKinds order.
func runPosts(ctx context.Context, client *warmpool.Client, f postFlags) (summary, []kindErr) {
	results := make([]workerResult, f.c)
	for i := range results {
		results[i] = workerResult{codes: map[string]int{}, first: map[string]error{}, errs: errorCounts{}}
	}
	spec := load.Spec{Workers: f.c, Requests: int64(f.n), Duration: f.timeout, Pause: f.pause}
	sum := load.Run(ctx, spec, func(ctx context.Context, _ int64, _ int) (int, error) {
		err := client.PostJSON(ctx, f.url, f.data, nil)
		if se, ok := errors.AsType[*warmpool.StatusError](err); ok {
			return se.StatusCode, err
		}
		return 0, err
	}, func(rec load.Record) { results[rec.Worker].record(rec) })

	s := summary{URL: redact.URL(f.url), Requested: f.n, Workers: f.c, Seconds: sum.Elapsed.Seconds(), Errors: newErrorCounts()}
	var latencies []time.Duration
	first := map[string]error{}
	for _, r := range results {
		s.Sent += r.sent
		s.OK += r.ok
		s.Errors.merge(r.errs)
		latencies = append(latencies, r.latencies...)
		for code, n := range r.codes {
			if s.StatusCodes == nil {
				s.StatusCodes = map[string]int{}
			}
			s.StatusCodes[code] += n
		}
		for k, err := range r.first {
			if _, ok := first[k]; !ok {
				first[k] = err
			}
		}
	}
	var firsts []kindErr
	for _, k := range warmpool.ErrorKinds() {
		if err, ok := first[k]; ok {
			firsts = append(firsts, kindErr{k, err})
		}
	}
	if sum.Elapsed > 0 {
		s.RequestsPerSecond = float64(s.Sent) / sum.Elapsed.Seconds()
	}
	s.LatencyP50, s.LatencyP99 = percentiles(latencies)
	if s.Sent < s.Requested {
		s.Stopped = "interrupted"
		if ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			s.Stopped = "-timeout reached"
		}
	}
	st := client.Stats()
	s.Pool = poolSummary{Stats: st, ReuseRate: st.ReuseRate()}
	s.Findings = newFindings(doctor.Diagnose(st, client.Config()))
	return s, firsts
}
