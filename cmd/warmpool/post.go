package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warmpool/warmpool"
)

const postSynopsis = `Usage: warmpool post URL [flags]

POST the JSON object -data to URL through one pooled warmpool client, with the
bearer token from -token, $WARMPOOL_TOKEN or the auth: block of -config (never
printed), and print the JSON
answer to stdout: indented with -format text, as received with -format json.
A non-2xx answer is an error (exit status 1).

With -n, send N requests over -c workers sharing the one client, bounded by N
and by -timeout in all, and print a summary instead of the answers: requests,
errors by kind, req/s, p50/p99 latency, the client's pool figures
(connections created, reuse rate, open and idle at the end, pool timeouts),
and the pool doctor's findings, each with its fix, or "doctor: no findings
(pool healthy)"; -format json gives them as a "findings" array. Any failed
request makes the exit status 1; an example error of each kind goes to
stderr. Findings do not change the exit status: "warmpool doctor" does that.
-pause makes each worker wait between its requests, leaving its connection
idle, as traffic with gaps does.

The client's settings come from the http_client block of -config and the
WARMPOOL_* variables (WARMPOOL_MAX_CONNECTIONS, WARMPOOL_POOL_TIMEOUT, ...).
`

const postExamples = `Examples:
  warmpool post http://127.0.0.1:8080/answer -data '{"question":"why?"}'
  WARMPOOL_TOKEN=s3cret warmpool post https://127.0.0.1:8443/answer -insecure
  warmpool post http://127.0.0.1:8080/answer -n 200 -c 8
  WARMPOOL_MAX_CONNECTIONS=2 warmpool post http://127.0.0.1:8080/answer?delay=20ms -n 100 -c 10 -format json
`

// postFlags are the settings of one "warmpool post" or "warmpool doctor" run.
type postFlags struct {
	url        string
	data       json.RawMessage
	dataArg    string // -data as given: JSON, or @file
	configPath string
	token      string
	insecure   bool
	n, c       int
	pause      time.Duration
	timeout    time.Duration
	format     string
}

// runPost implements "warmpool post".
func runPost(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parsePost(args, stdout)
	if err != nil {
		return err
	}
	client, err := newClient("post", clientFlags{f.configPath, f.token, f.insecure}, stderr)
	if err != nil {
		return err
	}
	defer client.Close()

	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	if f.n == 0 {
		return withHint(postOnce(ctx, client, f, stdout))
	}
	s := runLoad(ctx, "post", client, f, stderr)
	if err := writeSummary(stdout, s, f.format, false); err != nil {
		return err
	}
	return s.failure("post")
}

func parsePost(args []string, stdout io.Writer) (postFlags, error) {
	cmd := newCommand("post", postSynopsis, postExamples)
	var f postFlags
	f.define(cmd.fs)
	cmd.fs.IntVar(&f.n, "n", 0, "send `N` requests and print a summary instead of the answer")
	cmd.fs.IntVar(&f.c, "c", 1, "with -n, the number of concurrent workers")
	if err := f.parse(cmd, args, stdout); err != nil {
		return f, err
	}
	switch {
	case f.n < 0:
		return f, usagef("post", "-n must not be negative")
	case cmd.set("c") && f.n == 0:
		return f, usagef("post", "-c needs -n")
	case cmd.set("pause") && f.n == 0:
		return f, usagef("post", "-pause needs -n")
	}
	f.c = min(f.c, max(f.n, 1))
	return f, nil
}

// define registers on fs the flags that post and doctor share; each
// registers its own -n and -c, whose defaults and meaning differ.
func (f *postFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&f.dataArg, "data", "{}", "the `JSON` object to send; @file reads it from file")
	fs.StringVar(&f.configPath, "config", "", "YAML `file` with an http_client block of client settings")
	fs.StringVar(&f.token, "token", "", "bearer `token` (default $WARMPOOL_TOKEN; none: no Authorization). Prefer the variable: flags show in ps")
	fs.BoolVar(&f.insecure, "insecure", false, "skip TLS certificate verification, for a self-signed test server (warmpool serve -proto tls)")
	fs.DurationVar(&f.pause, "pause", 0, "how long each worker waits between its requests, leaving its connection idle (0: no wait)")
	fs.DurationVar(&f.timeout, "timeout", 60*time.Second, "bound on the whole run")
	fs.StringVar(&f.format, "format", "text", "output format: text or json")
}

// parse parses args for cmd, whose flags define registered, and checks what
// post and doctor share: one absolute URL, valid -data, and the ranges of
// the shared flags and of -c.
func (f *postFlags) parse(cmd *command, args []string, stdout io.Writer) error {
	positional, err := cmd.parse(args, stdout)
	if err != nil {
		return err
	}
	switch len(positional) {
	case 0:
		return usagef(cmd.name, "missing URL")
	case 1:
		f.url = positional[0]
	default:
		return usagef(cmd.name, "want one URL, got %d arguments", len(positional))
	}
	if u, err := url.Parse(f.url); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef(cmd.name, "URL %q: want an absolute http:// or https:// URL", redact(f.url))
	}
	raw := []byte(f.dataArg)
	if name, ok := strings.CutPrefix(f.dataArg, "@"); ok {
		if raw, err = os.ReadFile(name); err != nil {
			return usagef(cmd.name, "-data: %v", err)
		}
	}
	if !json.Valid(raw) {
		return usagef(cmd.name, "-data is not valid JSON")
	}
	f.data = raw
	switch {
	case f.c < 1:
		return usagef(cmd.name, "-c must be at least 1")
	case f.pause < 0:
		return usagef(cmd.name, "-pause must not be negative")
	case f.timeout <= 0:
		return usagef(cmd.name, "-timeout must be positive")
	case f.format != "text" && f.format != "json":
		return usagef(cmd.name, "-format %q: want text or json", f.format)
	}
	if f.token == "" {
		f.token = os.Getenv("WARMPOOL_TOKEN")
	}
	return nil
}

// clientFlags are the flags that build a client: post's and doctor's, and
// serve's for its upstream.
type clientFlags struct {
	configPath string // http_client and auth blocks; "" for none
	token      string // a static bearer token; "" leaves the auth block to decide
	insecure   bool
}

// newClient builds the one client of a run of cmd, from -config and the
// WARMPOOL_* variables. A bad configuration is a usage error.
func newClient(cmd string, f clientFlags, stderr io.Writer, opts ...warmpool.Option) (*warmpool.Client, error) {
	cfg, err := warmpool.LoadConfig(f.configPath)
	if err != nil {
		return nil, &usageError{cmd: cmd, err: err}
	}
	if f.token != "" {
		opts = append(opts, warmpool.WithTokenSource(warmpool.StaticToken(f.token)))
	}
	if f.insecure {
		opts = append(opts, warmpool.WithTLSConfig(&tls.Config{InsecureSkipVerify: true}))
		fmt.Fprintf(stderr, "warmpool %s: -insecure: not verifying the TLS certificate of the server it calls; use it only against a test server\n", cmd)
	}
	client, err := warmpool.New(cfg, opts...)
	if err != nil {
		return nil, &usageError{cmd: cmd, err: err}
	}
	return client, nil
}

// postOnce sends one request and prints the answer.
func postOnce(ctx context.Context, client *warmpool.Client, f postFlags, stdout io.Writer) error {
	var answer json.RawMessage
	if err := client.PostJSON(ctx, f.url, f.data, &answer); err != nil {
		return err
	}
	var b bytes.Buffer
	if f.format == "text" {
		if err := json.Indent(&b, answer, "", "  "); err != nil {
			return fmt.Errorf("warmpool post: %w", err) // unreachable: the decoder checked it
		}
	} else {
		b.Write(answer)
	}
	b.WriteByte('\n')
	_, err := stdout.Write(b.Bytes())
	return err
}

// withHint adds a hint to an error that has a common cause.
func withHint(err error) error {
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return fmt.Errorf("%w (a test server with a self-signed certificate, such as warmpool serve -proto tls, needs -insecure)", err)
	}
	return err
}

// errKind names a class of failed request in the summary.
type errKind string

const (
	kindStatus      errKind = "status"       // a non-2xx answer (*warmpool.StatusError)
	kindPoolTimeout errKind = "pool timeout" // warmpool.ErrPoolTimeout
	kindTimeout     errKind = "timeout"      // request_timeout or -timeout expired
	kindOther       errKind = "other"        // anything else: refused, reset, TLS, not JSON...
)

func classify(err error) errKind {
	if _, ok := errors.AsType[*warmpool.StatusError](err); ok {
		return kindStatus
	}
	switch {
	case errors.Is(err, warmpool.ErrPoolTimeout):
		return kindPoolTimeout
	case errors.Is(err, context.DeadlineExceeded):
		return kindTimeout
	}
	return kindOther
}

// kindErr is an example error of a kind.
type kindErr struct {
	kind errKind
	err  error
}

// workerResult is what one worker saw; workers share nothing while running.
type workerResult struct {
	sent, ok  int
	errs      errorCounts
	codes     map[string]int  // status code → count
	latencies []time.Duration // of successful requests
	first     map[errKind]error
}

func (r *workerResult) record(err error, d time.Duration) {
	r.sent++
	if err == nil {
		r.ok++
		r.latencies = append(r.latencies, d)
		return
	}
	k := classify(err)
	r.errs.add(k)
	if se, ok := errors.AsType[*warmpool.StatusError](err); ok {
		r.codes[strconv.Itoa(se.StatusCode)]++
	}
	if _, seen := r.first[k]; !seen {
		r.first[k] = err
	}
}

// runLoad runs the load of a -n run of cmd, telling stderr what it sends
// and an example error of each kind that occurred.
func runLoad(ctx context.Context, cmd string, client *warmpool.Client, f postFlags, stderr io.Writer) summary {
	fmt.Fprintf(stderr, "warmpool %s: sending %d requests over %d workers to %s\n", cmd, f.n, f.c, redact(f.url))
	s, firstErrs := load(ctx, client, f)
	for _, err := range firstErrs {
		fmt.Fprintf(stderr, "warmpool %s: a %s error: %v\n", cmd, err.kind, withHint(err.err))
	}
	return s
}

// load sends f.n requests over f.c workers until done or ctx ends, and
// summarizes them with the client's pool figures and the pool doctor's
// findings. It also returns an example error of each kind seen, in a fixed
// order of kinds.
func load(ctx context.Context, client *warmpool.Client, f postFlags) (summary, []kindErr) {
	var next atomic.Int64
	results := make([]workerResult, f.c)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range results {
		r := &results[i]
		r.codes, r.first = map[string]int{}, map[errKind]error{}
		wg.Go(func() {
			for first := true; next.Add(1) <= int64(f.n) && ctx.Err() == nil; first = false {
				if !first && pause(ctx, f.pause) != nil {
					return
				}
				t := time.Now()
				err := client.PostJSON(ctx, f.url, f.data, nil)
				r.record(err, time.Since(t))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	s := summary{URL: redact(f.url), Requested: f.n, Workers: f.c, Seconds: elapsed.Seconds()}
	var latencies []time.Duration
	first := map[errKind]error{}
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
	for _, k := range []errKind{kindStatus, kindPoolTimeout, kindTimeout, kindOther} {
		if err, ok := first[k]; ok {
			firsts = append(firsts, kindErr{k, err})
		}
	}
	if elapsed > 0 {
		s.RequestsPerSecond = float64(s.Sent) / elapsed.Seconds()
	}
	s.LatencyP50, s.LatencyP99 = percentiles(latencies)
	if s.Sent < s.Requested {
		s.Stopped = "interrupted"
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			s.Stopped = "-timeout reached"
		}
	}
	st := client.Stats()
	s.Pool = newPoolSummary(st)
	s.Findings = newFindings(warmpool.Diagnose(st, client.Config()))
	return s, firsts
}

// pause waits d, or until ctx ends; it returns ctx's error if ctx ended.
func pause(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// failure is the error of a run of cmd that was stopped early or had failed
// requests, nil if every request succeeded.
func (s summary) failure(cmd string) error {
	switch {
	case s.Stopped != "":
		return fmt.Errorf("warmpool %s: stopped (%s) after %d of %d requests", cmd, s.Stopped, s.Sent, s.Requested)
	case s.Errors.total() > 0:
		return fmt.Errorf("warmpool %s: %d of %d requests failed", cmd, s.Errors.total(), s.Sent)
	}
	return nil
}

// redact drops user info and query from a URL for printing: either may carry
// credentials.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<invalid URL>"
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment = nil, "", false, ""
	return u.String()
}

// summary is the report of a -n run; -format json prints it as is.
type summary struct {
	URL               string         `json:"url"` // without query or user info
	Requested         int            `json:"requested"`
	Workers           int            `json:"workers"`
	Sent              int            `json:"sent"`
	OK                int            `json:"ok"`
	Errors            errorCounts    `json:"errors"`
	StatusCodes       map[string]int `json:"status_codes,omitempty"` // non-2xx answers by status
	Seconds           float64        `json:"seconds"`
	RequestsPerSecond float64        `json:"requests_per_second"`
	// Latencies of the successful requests; zero when there is none.
	LatencyP50 time.Duration `json:"latency_p50_ns"`
	LatencyP99 time.Duration `json:"latency_p99_ns"`
	Pool       poolSummary   `json:"pool"`
	Stopped    string        `json:"stopped,omitempty"` // why fewer than Requested were sent
	// Findings are the pool doctor's (warmpool.Diagnose), worst first per
	// host; empty, not null, when the pool is healthy.
	Findings []finding `json:"findings"`
}

// errorCounts counts failed requests by kind.
type errorCounts struct {
	Status      int `json:"status"`
	PoolTimeout int `json:"pool_timeout"`
	Timeout     int `json:"timeout"`
	Other       int `json:"other"`
}

func (e *errorCounts) add(k errKind) {
	switch k {
	case kindStatus:
		e.Status++
	case kindPoolTimeout:
		e.PoolTimeout++
	case kindTimeout:
		e.Timeout++
	default:
		e.Other++
	}
}

func (e *errorCounts) merge(o errorCounts) {
	e.Status += o.Status
	e.PoolTimeout += o.PoolTimeout
	e.Timeout += o.Timeout
	e.Other += o.Other
}

func (e errorCounts) total() int { return e.Status + e.PoolTimeout + e.Timeout + e.Other }

// percentiles returns the nearest-rank p50 and p99 of ds, sorting it.
func percentiles(ds []time.Duration) (p50, p99 time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	slices.Sort(ds)
	rank := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(ds)))) - 1
		return ds[max(i, 0)]
	}
	return rank(0.50), rank(0.99)
}

// writeSummary prints s as one JSON object, or as text for people: the load
// figures, one line on the pool, with poolDetail the doctor's fuller view of
// the pool, and the findings.
func writeSummary(w io.Writer, s summary, format string, poolDetail bool) error {
	if format == "json" {
		if s.Findings == nil {
			s.Findings = []finding{}
		}
		b, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			return fmt.Errorf("warmpool: %w", err)
		}
		_, err = w.Write(append(b, '\n'))
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "url           %s\n", s.URL)
	fmt.Fprintf(&b, "requests      %d sent of %d, %d workers, in %s (%.1f req/s)\n",
		s.Sent, s.Requested, s.Workers, roundDuration(time.Duration(s.Seconds*float64(time.Second))), s.RequestsPerSecond)
	if s.Stopped != "" {
		fmt.Fprintf(&b, "stopped       %s\n", s.Stopped)
	}
	fmt.Fprintf(&b, "ok            %d\n", s.OK)
	e := s.Errors
	fmt.Fprintf(&b, "errors        %d (status %d, pool timeout %d, timeout %d, other %d)\n",
		e.total(), e.Status, e.PoolTimeout, e.Timeout, e.Other)
	if len(s.StatusCodes) > 0 {
		var codes []string
		for _, code := range slices.Sorted(maps.Keys(s.StatusCodes)) {
			codes = append(codes, fmt.Sprintf("%s×%d", code, s.StatusCodes[code]))
		}
		fmt.Fprintf(&b, "status codes  %s\n", strings.Join(codes, ", "))
	}
	if s.OK > 0 {
		fmt.Fprintf(&b, "latency       p50 %s, p99 %s (successful requests)\n", roundDuration(s.LatencyP50), roundDuration(s.LatencyP99))
	}
	p := s.Pool
	fmt.Fprintf(&b, "connections   %d created, reuse rate %.1f%%, %d open (%d idle) at end, %d pool timeouts\n",
		p.Created, 100*p.ReuseRate, p.Open, p.Idle, p.PoolTimeouts)
	if poolDetail {
		writePoolDetail(&b, p)
	}
	writeFindings(&b, s.Findings)
	_, err := io.WriteString(w, b.String())
	return err
}

// roundDuration keeps three significant figures or so: 612µs, 2.31ms, 1.52s.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= 100*time.Millisecond:
		return d.Round(time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
