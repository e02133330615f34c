package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/bench"
	benchreport "github.com/warmpool/warmpool/internal/bench/report"
)

const benchSynopsis = `Usage: warmpool bench [flags] [URL]

Benchmark HTTP clients against the same server at the same load, one after the
other, in one invocation, and print one report. The modes:
  per-request  a new http.Client and transport per request, closed after
               (a new connection, and TLS handshake, every time)
  default      http.DefaultClient: a fresh clone of Go's default transport
               (2 idle connections per host; HTTP/2 when TLS offers it)
  default-h1   the same held to HTTP/1.1, as against a TLS server without
               HTTP/2; run for -proto tls only
  tuned        a bare http.Client tuned by hand for the load: HTTP/1.1,
               MaxIdleConnsPerHost = MaxConnsPerHost = concurrency + 8,
               warmpool's default timeouts
  warmpool     warmpool's client over HTTP/1.1 (-config, or the defaults)
  warmpool-h2  warmpool's client over HTTP/2 (TLS by ALPN, or h2c); not run
               for -proto http

Without URL it starts the reference server in this process on 127.0.0.1,
once per protocol, and sends it POST /answer with a 210-byte JSON question and
a bearer token. With URL it benchmarks a server you run (warmpool serve, or
your own); connection counts come from GET <origin>/stats if it answers
refserver's JSON, else they show as "-".

Each run (one mode over one protocol) stops by itself at -duration or
-requests, whichever comes first; requests still in flight then get a grace
period of max(2s, -duration) before they are cancelled. By default a run lasts
5s, or 3s when there are more than 6 runs (the default 2 protocols × 6 modes
less warmpool-h2 and default-h1 over http make 10 runs: about 35s in all).

On a shared machine, -rounds 3 splits each run into 3 slices run in turn
with the other modes' (per-request, default, ..., per-request, default, ...),
so that other processes' load falls on every mode alike.

Load: closed model by default, -concurrency workers each sending its next
request when the last one is answered. With -rate, open model: requests are
scheduled at -rate per second from the start, at most -concurrency in flight,
and latency counts from the scheduled time, so a slow server cannot hide its
queueing (no coordinated omission).

Network: -rtt puts an in-process toxiproxy between client and server that
delays bytes by rtt/2 each way, plus one rtt before the first bytes of each
connection for the TCP handshake, which a loopback proxy cannot delay. The
report states what the proxy costs by itself.

Tokens: by default every request carries one static bearer token. With
-token-mode, tokens come from a fake issuer started in this process on
127.0.0.1, which answers GET /token?audience=<origin> after -token-fetch (5ms)
with a JWT valid for 1h: the token the in-process server requires.
per-request fetches a fresh token before every request over a new http.Client,
as a frontend that calls its id-token helper before each backend call; every
mode then sets the header itself (warmpool caches any token source it is
given, so it gets none). cached fetches once per token lifetime: warmpool
through its token source, the other modes through one warmpool
CachedTokenSource per client. The report adds the issuer's fetch count and the
time spent fetching per request. Not with URL.

Server: -server-idle-timeout and -server-max-requests make the in-process
server close idle connections, or each connection after N requests, as
servers and load balancers do; the report shows the errors (by kind) and
connections each mode gets under them.

The report gives per mode: requests, errors by kind (as warmpool.ErrorKind
names them), req/s, latency min/p50/p90/p99/p99.9/max, connections the server
accepted and its peak open connections, connection reuse, time spent dialing
and in TLS handshakes per request, CPU per request (the whole process: the
in-process server too), body bytes, and ratios to per-request, default and
tuned, all "higher is better": throughput, and p50 speed-up (the other mode's
p50 ÷ this one's). It ends with a verdict per protocol and one over all,
computed from these figures, and with a hint when the server answered 401 (a
token is missing: -token). -format json gives every figure, each explained in
its "definitions"; -format html a page with charts.

Scenarios (-scenario overload|hang|slow-replica): how clients degrade when
the backend cannot keep up. The in-process server has a fixed capacity,
-capacity-handlers slots (16) × -service-time (10ms) = 1,600 req/s, behind a
queue without bound, and, as uvicorn workers, executes every request it read
even after its caller gave up. Calls follow an open model at fixed rates,
each with its own -deadline (1s), stamped on the request so that the server
counts the executions that started after it (wasted). Modes: tuned-net/http
(a bare http.Client, MaxIdleConnsPerHost 100, no MaxConnsPerHost, Timeout
-request-timeout), warmpool (as configured: the defaults, or -config) and
warmpool with the scenario's feature on:
  overload      0.5×, 2× then 0.5× the capacity (-calm-load, -overload-load;
                -calm-for 3s, -overload-for 10s, -after-for 5s);
                warmpool-adaptive: concurrency_limit: adaptive
  hang          -rate 100/s; healthy for -calm-for (3s), then the server
                hangs (reads requests, answers none) for -hang-for, then
                recovers for -after-for (10s); calls have no deadline of their
                own, -request-timeout (30s) bounds each; warmpool-breaker:
                circuit_breaker_failures: 5 (-breaker-failures)
  slow-replica  three endpoints on 127.0.0.1-3, one port, behind one name;
                127.0.0.1 answers -slow-share (10 %) of its requests after
                -slow-delay (200ms); GET at -rate 500/s for -duration 10s;
                warmpool-hedge-p95 (hedge_after: p95) and, if it misses its
                target, warmpool-hedge-fixed (hedge_after from the fast
                replicas' p99)
The report gives per phase and mode: goodput (successes within the deadline
per second), p50/p99 of successes from their due time, fast fails (calls
failed without being sent: overloaded, throttled, circuit_open, deadline) and
their latency, errors by kind, the server's executions, wasted executions and
executions per call; the recovery after the overload, the breaker's figures,
each endpoint's share; warmpool's Stats at the end, the featured mode's
timeline, issue 16's targets (met or missed) and a one-line verdict.

Progress, with the time left, goes to stderr, only when it is a terminal.
Ctrl-C (SIGINT) stops the runs: the report of those that finished is
printed, marked partial, and the exit status is 1. Output files (-html) are
checked writable before the runs: if not, exit status 2.
`

const benchExamples = `Examples:
  warmpool bench
  warmpool bench -proto tls -concurrency 32 -format json > bench.json
  warmpool bench -proto tls -modes tuned,warmpool -duration 9s -rounds 3
  warmpool bench -rtt 10ms -concurrency 1 -modes per-request,warmpool
  warmpool bench -proto http -modes warmpool -token-mode per-request -token-fetch 2ms
  warmpool bench -proto tls,h2c -rate 2000 -concurrency 64 -duration 10s -html report.html
  warmpool bench -proto http -modes tuned,warmpool -server-idle-timeout 1s -server-max-requests 100
  warmpool bench -format html > report.html
  warmpool serve -proto tls & warmpool bench -insecure https://127.0.0.1:8080/answer
  warmpool bench -backends 3 -add-backend-at 5s -kill-backend-at 10s
  warmpool bench -backends 4 -modes default,warmpool,warmpool-round_robin -server-delay 1ms
  warmpool bench -scenario overload
  warmpool bench -scenario hang -request-timeout 5s -format json > hang.json
  warmpool bench -scenario slow-replica -modes warmpool,warmpool-hedge-p95
`

// runBench implements "warmpool bench". On SIGINT (ctx ends) it prints the
// report of the runs that finished, marked partial, and fails (exit 1).
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	s, out, err := parseBench(args, stdout)
	if err != nil {
		return err
	}
	if benchIsTerminal(stderr) {
		s.Progress = stderr
	}
	if out.fleet != nil {
		return runFleetBench(ctx, *out.fleet, out, stdout, stderr)
	}
	if out.scenario != nil {
		return runScenarioBench(ctx, *out.scenario, out, stdout, stderr)
	}
	rep, runErr := bench.Run(ctx, s)
	if rep == nil {
		return fmt.Errorf("warmpool bench: %w", runErr)
	}
	benchreport.Finish(rep)
	if err := writeBench(rep, out, stdout); err != nil {
		return err
	}
	if rep.Partial {
		return fmt.Errorf("warmpool bench: %s; the report holds the runs that finished (partial)", rep.PartialReason)
	}
	return benchFailures(rep)
}

// writeBench writes rep to stdout in out.format, and the HTML page to
// out.html if set: with -format html, there instead of stdout.
func writeBench(rep *bench.Report, out benchOutput, stdout io.Writer) error {
	var err error
	switch {
	case out.format == "json":
		err = benchreport.WriteJSON(stdout, rep)
	case out.format == "text":
		err = benchreport.WriteText(stdout, rep)
	case out.html == "": // html to stdout
		err = benchreport.WriteHTML(stdout, rep)
	}
	if err != nil {
		return fmt.Errorf("warmpool bench: %w", err)
	}
	if out.html != "" {
		var b bytes.Buffer
		if err := benchreport.WriteHTML(&b, rep); err != nil {
			return fmt.Errorf("warmpool bench: HTML report: %w", err)
		}
		if err := os.WriteFile(out.html, b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("warmpool bench: %w", err)
		}
	}
	return nil
}

// benchOutput is where the report goes.
type benchOutput struct {
	format string               // text, json or html
	html   string               // file, "" for none
	fleet  *bench.FleetSettings // -backends: a fleet run instead (bench_fleet.go)
	// -scenario: a graceful-degradation scenario instead (bench_scenario.go)
	scenario *bench.ScenarioSettings
}

// benchFlags are "warmpool bench"'s flags as parsed, before checking.
type benchFlags struct {
	s                   bench.Settings
	out                 benchOutput
	fleet               bench.FleetSettings
	scn                 bench.ScenarioSettings
	protos, modes, data string
}

// define registers the flags of bench on fs.
func (f *benchFlags) define(fs *flag.FlagSet) {
	s := &f.s
	fs.DurationVar(&s.Duration, "duration", 0, "length of each run (one mode over one protocol); 0: 5s, or 3s when there are more than 6 runs")
	fs.IntVar(&s.Concurrency, "concurrency", bench.DefaultConcurrency, "workers (closed model), or the cap on requests in flight (open model, -rate)")
	fs.Int64Var(&s.Requests, "requests", 0, "stop each run after this many requests (0: only -duration bounds it)")
	fs.IntVar(&s.Rounds, "rounds", 1, "split each run into this many slices, interleaved with the other modes', so that background load falls on all alike")
	fs.Float64Var(&s.Rate, "rate", 0, "open model: schedule `N` requests per second from the start of each run (0: closed model)")
	fs.StringVar(&f.protos, "proto", "", "comma-separated `protocols`: http, tls, h2c (default http,tls; with URL, its scheme decides; h2c declares an http:// URL speaks it)")
	fs.StringVar(&f.modes, "modes", "", "comma-separated `modes` to run, in their fixed order (default all: "+strings.Join(bench.AllModes, ",")+")")
	fs.DurationVar(&s.RTT, "rtt", 0, "simulated round-trip time through an in-process toxiproxy, whole milliseconds (0: no proxy)")
	fs.DurationVar(&s.Jitter, "jitter", 0, "with -rtt, vary each direction's latency by up to ± this, whole milliseconds")
	fs.Int64Var(&s.BandwidthKBps, "bandwidth", 0, "through the proxy, cap each direction of each connection at this many `KB/s` (0: no cap)")
	fs.StringVar(&f.out.format, "format", "text", "report format on stdout: text, json or html (with -html, the page goes to that file and nothing to stdout)")
	fs.StringVar(&f.out.html, "html", "", "also write a self-contained HTML report (charts in inline SVG) to `file`; checked writable before the runs")
	fs.StringVar(&f.data, "data", "", "request body, a `JSON` value; @file reads it from file (default a 210-byte question)")
	fs.StringVar(&s.Token, "token", "", "bearer `token` for URL (default $WARMPOOL_TOKEN; none: no Authorization); the in-process server uses a random one")
	fs.StringVar(&s.ConfigFile, "config", "", "YAML `file` with the http_client block for the warmpool modes (WARMPOOL_* variables apply too)")
	fs.BoolVar(&s.Insecure, "insecure", false, "skip TLS certificate verification in every mode, for a self-signed URL (warmpool serve -proto tls)")
	fs.DurationVar(&s.ServerDelay, "server-delay", 0, "service time the in-process server adds to each request")
	fs.DurationVar(&s.ServerIdleTimeout, "server-idle-timeout", 0, "the in-process server closes connections idle this long (0: Go's default); shorter than warmpool's keepalive_expiry, it shows the idle race")
	fs.IntVar(&s.ServerMaxRequests, "server-max-requests", 0, "the in-process server closes a connection after `N` requests (0: never), as some load balancers do")
	fs.StringVar(&s.TokenMode, "token-mode", bench.TokenNone, "where each request's token comes from: none (one static token), per-request (fetched from the in-process token issuer before every request) or cached (fetched once per token lifetime)")
	fs.DurationVar(&s.TokenFetch, "token-fetch", bench.DefaultTokenFetch, "with -token-mode, how long the in-process token issuer takes per fetch")
	fs.IntVar(&f.fleet.Backends, "backends", 0, "run `N` reference servers on 127.0.0.1 … 127.0.0.N, one port, behind one host name, and report each mode's share per backend (modes "+strings.Join(bench.FleetModes, ",")+")")
	fs.DurationVar(&f.fleet.AddAt, "add-backend-at", 0, "with -backends, add a backend (127.0.0.N+1) to the name this long into each run")
	fs.DurationVar(&f.fleet.KillAt, "kill-backend-at", 0, "with -backends, kill the first backend (close it abruptly) this long into each run")
	f.defineScenario(fs)
}

// parseBench turns the command line into settings. Every problem is a usage
// error.
func parseBench(args []string, stdout io.Writer) (bench.Settings, benchOutput, error) {
	cmd := newCommand("bench", benchSynopsis, benchExamples)
	var f benchFlags
	f.define(cmd.fs)
	positional, err := cmd.parse(args, stdout)
	if err != nil {
		return f.s, f.out, err
	}
	if slices.ContainsFunc(scenarioFlags, cmd.set) {
		f.out.scenario = &f.scn
		return f.s, f.out, checkScenario(cmd, &f, positional)
	}
	if cmd.set("backends") || cmd.set("add-backend-at") || cmd.set("kill-backend-at") {
		s, fleet := f.s, &f.fleet
		fleet.Modes, fleet.Concurrency, fleet.Duration, fleet.ServerDelay = benchList(f.modes), s.Concurrency, s.Duration, s.ServerDelay
		f.out.fleet = fleet
		return s, f.out, checkFleet(cmd, fleet, s, f.out, positional, f.data)
	}
	switch len(positional) {
	case 0:
	case 1:
		f.s.Target = positional[0]
		if err := checkURL(f.s.Target); err != nil {
			return f.s, f.out, &usageError{cmd: "bench", err: err}
		}
	default:
		return f.s, f.out, usagef("bench", "want at most one URL, got %d arguments", len(positional))
	}
	if err := f.check(cmd); err != nil {
		return f.s, f.out, err
	}
	return f.s, f.out, f.fill()
}

// check reports the first flag out of range, or given where it does not
// apply; it reads -data.
func (f *benchFlags) check(cmd *command) error {
	s := &f.s
	if f.out.format != "text" && f.out.format != "json" && f.out.format != "html" {
		return usagef("bench", "-format %q: want text, json or html", f.out.format)
	}
	s.Protos = benchList(f.protos)
	s.Modes = benchList(f.modes)
	if f.data != "" {
		s.Body = []byte(f.data)
		if name, ok := strings.CutPrefix(f.data, "@"); ok {
			var err error
			if s.Body, err = os.ReadFile(name); err != nil {
				return usagef("bench", "-data: %v", err)
			}
		}
	}
	switch {
	case s.Target == "" && (s.Token != "" || s.Insecure):
		return usagef("bench", "-token and -insecure are for a URL; the in-process server makes its own")
	case s.Target != "" && (cmd.set("server-delay") || cmd.set("server-idle-timeout") || cmd.set("server-max-requests")):
		return usagef("bench", "-server-delay, -server-idle-timeout and -server-max-requests are for the in-process server; with URL, the server decides")
	case s.ServerIdleTimeout < 0:
		return usagef("bench", "-server-idle-timeout must not be negative")
	case s.ServerMaxRequests < 0:
		return usagef("bench", "-server-max-requests must not be negative")
	case s.Target != "" && s.TokenMode != bench.TokenNone:
		return usagef("bench", "-token-mode is for the in-process server, which trusts the in-process token issuer; with URL, use -token")
	case cmd.set("token-fetch") && s.TokenMode == bench.TokenNone:
		return usagef("bench", "-token-fetch needs -token-mode per-request or cached")
	case s.TokenFetch <= 0 || s.TokenFetch > bench.MaxTokenFetch:
		return usagef("bench", "-token-fetch %v: want a duration in (0, %v]; 1ns for practically none", s.TokenFetch, bench.MaxTokenFetch)
	case cmd.set("duration") && s.Duration <= 0:
		return usagef("bench", "-duration must be positive")
	case s.Concurrency < 1:
		return usagef("bench", "-concurrency must be at least 1")
	case s.Rounds < 1:
		return usagef("bench", "-rounds must be at least 1")
	}
	return nil
}

// fill completes the settings from the environment and the config file,
// validates them, and checks that the HTML report can be written.
func (f *benchFlags) fill() error {
	s := &f.s
	if s.Target != "" && s.Token == "" {
		s.Token = os.Getenv("WARMPOOL_TOKEN")
	}
	if s.TokenMode == bench.TokenNone {
		s.TokenFetch = 0 // the flag's default; no issuer runs
	}
	cfg, err := warmpool.LoadConfig(s.ConfigFile)
	if err != nil {
		return &usageError{cmd: "bench", err: err}
	}
	s.Config = &cfg
	if s.ConfigFile == "" && benchConfigEnv() {
		s.ConfigFile = "defaults + WARMPOOL_* variables"
	}
	if err := s.Validate(); err != nil {
		return usagef("bench", "%v", err)
	}
	if f.out.html != "" {
		if err := checkWritable(f.out.html); err != nil {
			return usagef("bench", "-html %s: %v", f.out.html, err)
		}
	}
	return nil
}

// checkWritable fails fast, before minutes of runs, when the report could
// not be written to path: a directory, a file without write permission, or
// a missing or read-only directory. It leaves an existing file as it was
// and creates none.
func checkWritable(path string) error {
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		return errors.New("is a directory; want a file name")
	case err == nil:
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("cannot write it: %w", errors.Unwrap(err))
		}
		return f.Close()
	case !errors.Is(err, os.ErrNotExist):
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".warmpool-bench-*")
	if err != nil {
		return fmt.Errorf("cannot create it in %s: %w", filepath.Dir(path), errors.Unwrap(err))
	}
	f.Close()
	return os.Remove(f.Name())
}

// benchList splits a comma-separated flag value; "" is nil.
func benchList(v string) []string {
	if v == "" {
		return nil
	}
	parts := strings.Split(v, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// benchConfigEnv reports whether a WARMPOOL_* variable other than the token
// may change the warmpool modes' configuration.
func benchConfigEnv() bool {
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "WARMPOOL_") && !strings.HasPrefix(kv, "WARMPOOL_TOKEN=") {
			return true
		}
	}
	return false
}

// benchIsTerminal reports whether w is a terminal, where progress helps
// rather than clutters.
func benchIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// benchFailures makes the job fail when some run had no successful request
// at all: the report is printed, but its numbers for that run mean nothing
// (a wrong token, an unreachable URL).
func benchFailures(rep *bench.Report) error {
	for _, p := range rep.Protos {
		for _, m := range p.Modes {
			if m.OK == 0 && m.Requests > 0 {
				first := ""
				if len(m.ErrorSamples) > 0 {
					first = ": " + m.ErrorSamples[0]
				}
				msg := fmt.Sprintf("warmpool bench: every request of %s over %s failed%s", m.Mode, p.Proto, first)
				for _, h := range rep.Hints {
					msg += "\n" + h
				}
				return errors.New(msg)
			}
		}
	}
	return nil
}

// defineScenario registers the scenario flags on fs, into f.scn.
func (f *benchFlags) defineScenario(fs *flag.FlagSet) {
	s := &f.scn
	fs.StringVar(&s.Scenario, "scenario", "", "run a graceful-degradation `scenario` against an in-process server of fixed capacity: "+
		strings.Join(bench.ScenarioNames, ", ")+" (see the scenario section above)")
	fs.IntVar(&s.Handlers, "capacity-handlers", 0, "with -scenario, the server's handler slots (default 16)")
	fs.DurationVar(&s.ServiceTime, "service-time", 0, "with -scenario, the time one execution holds its slot (default 10ms)")
	fs.DurationVar(&s.Deadline, "deadline", 0, "with -scenario, each call's own deadline (default 1s; hang: none, request_timeout bounds each call)")
	fs.DurationVar(&s.RequestTimeout, "request-timeout", 0, "with -scenario, every mode's request_timeout (default the config's, 30s)")
	fs.DurationVar(&s.CalmFor, "calm-for", 0, "overload: the calm phase before the overload (default 3s); hang: the healthy phase (default 3s)")
	fs.DurationVar(&s.OverloadFor, "overload-for", 0, "overload: the overload phase (default 10s)")
	fs.DurationVar(&s.After, "after-for", 0, "overload: the calm phase after the overload (default 5s); hang: the phase after the recovery (default 10s)")
	fs.Float64Var(&s.CalmLoad, "calm-load", 0, "overload: the calm phases' load, a multiple of the capacity (default 0.5)")
	fs.Float64Var(&s.OverLoad, "overload-load", 0, "overload: the overload's load, a multiple of the capacity (default 2)")
	fs.DurationVar(&s.HangFor, "hang-for", 0, "hang: how long the server hangs (default request_timeout + 17s: room for 1,000 fast fails at 100/s)")
	fs.IntVar(&s.BreakerFailures, "breaker-failures", 0, "hang: warmpool-breaker's circuit_breaker_failures (default 5)")
	fs.Float64Var(&s.SlowShare, "slow-share", 0, "slow-replica: the share of the slow endpoint's requests answered late (default 0.1)")
	fs.DurationVar(&s.SlowDelay, "slow-delay", 0, "slow-replica: how late (default 200ms)")
}
