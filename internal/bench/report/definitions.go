package report

import (
	"fmt"
	"maps"
	"strings"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/doctor"
	"github.com/warmpool/warmpool/internal/bench"
)

// definitions explain every field of the JSON report, so that a reader needs
// nothing else to interpret it. The key of a field is its name for the
// report's own fields and a mode's (modes[]), and parent.name for any other,
// parent being the key that holds its object ("settings.concurrency",
// "latency_us.p50", "findings.fix"). Objects keyed by data (protocols,
// errors.by_kind, status_codes, http_client, pool.hosts,
// pool.failures_by_kind, definitions) have one entry in all. The entries of
// warmpool's tables (close reasons, dial failure kinds, error kinds, the
// doctor's rules) come from those tables. TestDefinitionsCoverEveryField
// walks a report and fails on a field without one.
var definitions = buildDefinitions()

func buildDefinitions() map[string]string {
	d := map[string]string{}
	for _, section := range []map[string]string{reportDefs, settingsDefs, machineDefs, protoDefs, proxyDefs, skippedDefs,
		modeDefs, modeObjectDefs, poolDefs, findingDefs, tokenDefs} {
		maps.Copy(d, section)
	}
	for _, base := range []string{"per_request", "default", "tuned"} {
		name := map[string]string{"per_request": "per-request", "default": "default", "tuned": "tuned"}[base]
		d["vs_"+base+".throughput"] = "req/s ÷ " + name + "'s req/s: above 1, this mode did more"
		d["vs_"+base+".p50_speedup"] = name + "'s p50 ÷ this mode's p50: above 1, this mode is faster"
		d["vs_"+base+".p50"] = "this mode's p50 ÷ " + name + "'s p50: below 1, this mode is faster (the inverse of p50_speedup, kept from schema 1)"
	}
	maps.Copy(d, tableDefinitions())
	return d
}

// tableDefinitions are the definitions that name the entries of warmpool's
// tables: each close reason and dial failure kind (a field of pool.closed_by
// and pool.dial_failures), the error kinds and their groups, the doctor's
// rules. An entry without a meaning of its own gets a plain one:
// TestReportKnowsEveryTableEntry asks for a meaning.
func tableDefinitions() map[string]string {
	d := map[string]string{}
	for _, r := range warmpool.CloseReasonNames() {
		d["closed_by."+r] = cmpOr(closeReasonMeanings[r], "connections closed for reason "+r+" (warmpool.CloseReasons)")
	}
	for _, k := range warmpool.DialFailureKinds() {
		d["dial_failures."+k] = cmpOr(dialKindMeanings[k], "failed connection attempts of kind "+k+" (warmpool.DialFailures)")
	}
	kinds := warmpool.ErrorKinds()
	d["errors.by_kind"] = "failed requests by warmpool.ErrorKind: " + strings.Join(kinds, ", ") + "; only kinds that occurred"
	for _, g := range []string{"timeout", "conn", "status", "other"} {
		var in []string
		for _, k := range kinds {
			if bench.ErrorGroup(k) == g {
				in = append(in, k)
			}
		}
		noun := "kinds"
		if len(in) == 1 {
			noun = "kind"
		}
		d["errors."+g] = fmt.Sprintf("group %s: %s%s %s", g, groupMeanings[g], noun, joinAnd(in))
	}
	d["findings.rule"] = "the rule that fired, stable: one of " + strings.Join(doctor.Rules(), ", ")
	return d
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// groupMeanings introduce the coarse error groups of ErrorCounts.
var groupMeanings = map[string]string{"status": "a non-2xx answer, "}

// closeReasonMeanings say what each close reason of warmpool.CloseReasons
// means, for the definitions of pool.closed_by.
var closeReasonMeanings = map[string]string{
	"idle_expiry":  "connections closed after sitting idle for keepalive_expiry",
	"max_age":      "connections retired by max_connection_age",
	"server":       "connections the server closed: FIN or RST while idle, or EOF",
	"error":        "connections closed because a read or write failed mid-exchange",
	"client":       "connections closed by Close or Shutdown of the client, at the end of each slice",
	"trim":         "idle connections closed beyond what recent demand needed",
	"other":        "connections closed by net/http otherwise (Connection: close, a body not read to the end)",
	"unused":       "connections closed without ever serving a request (a dial that lost the race to a free connection)",
	"learned_idle": "idle connections warmpool closed just before the server's learned idle timeout",
}

// dialKindMeanings say what each kind of warmpool.DialFailures means, for
// the definitions of pool.dial_failures.
var dialKindMeanings = map[string]string{
	"refused": "connection attempts refused, or reset while connecting",
	"timeout": "connection attempts whose connect or TLS handshake timed out",
	"dns":     "connection attempts whose name resolution failed",
	"tls":     "connection attempts whose TLS handshake failed (including certificate errors)",
	"other":   "connection attempts that failed otherwise",
}

// reportDefs define the report's own fields.
var reportDefs = map[string]string{
	"schema_version":   "layout version of this JSON document; it grows when a field changes meaning or goes away, not when one is added",
	"started_at":       "when the invocation started, UTC, to the second",
	"warmpool_version": "the warmpool that ran, as warmpool.BuildVersion says: its Version, then the Go version, the module version when it says more, and the VCS revision of a build from a checkout",
	"settings":         "what the runs did: the command line's effect, defaults filled in",
	"machine":          "where the runs ran",
	"partial":          "true when the invocation was interrupted (SIGINT): protos then hold only the runs that finished",
	"partial_reason":   "how far an interrupted invocation got; empty when it finished",
	"protos":           "the runs over each protocol, each against its own server",
	"notes":            "caveats that apply to every protocol",
	"hints":            "what to change when runs failed in a way with a common cause (a server answering 401 wants a token); empty when none applies",
	"verdict":          "the conclusion over every protocol, computed from this invocation's figures; each protos[] entry has its own",
	"definitions":      "this map: what every field means",
}

// settingsDefs define settings.
var settingsDefs = map[string]string{
	"settings.target":                       `"in-process" (the reference server started in this process on 127.0.0.1, once per protocol) or the URL given`,
	"settings.protos":                       "protocols run, in order: http (cleartext HTTP/1.1), tls (HTTPS, h2 and http/1.1 by ALPN), h2c (cleartext HTTP/2 by prior knowledge)",
	"settings.modes":                        "modes run, in run order (see modes.mode)",
	"settings.load_model":                   "closed: -concurrency workers, each sending its next request when the last is answered; open: -rate requests per second scheduled from the start, at most -concurrency in flight",
	"settings.concurrency":                  "workers (closed model) or the cap on requests in flight (open model)",
	"settings.rate_per_second":              "open model: requests scheduled per second; 0 in the closed model",
	"settings.duration_per_run_s":           "bound on each run (one mode over one protocol), seconds; a run also stops at requests_per_run",
	"settings.requests_per_run":             "bound on each run's requests; 0: the duration alone bounds it",
	"settings.rounds":                       "slices per run, run in turn with the other modes' slices so that background load falls on every mode alike",
	"settings.runs":                         "runs in the invocation: modes × protocols, less the skipped ones",
	"settings.rtt_ms":                       "simulated round-trip time through the in-process toxiproxy, ms; 0: no proxy",
	"settings.jitter_ms":                    "with rtt_ms, the most each direction's latency varies by, ± ms",
	"settings.bandwidth_kbps":               "through the proxy, the cap on each direction of each connection, KB/s; 0: none",
	"settings.request_bytes":                "size of each request's JSON body, bytes",
	"settings.server_delay_ms":              "service time the in-process server adds to each request, ms",
	"settings.config_file":                  "where the warmpool modes' configuration came from (-config file, or the WARMPOOL_* variables); empty: warmpool's defaults",
	"settings.insecure":                     "TLS certificates were not verified, in every mode (-insecure, for a self-signed URL)",
	"settings.tuned_max_conns":              "the tuned mode's MaxIdleConnsPerHost and MaxConnsPerHost: concurrency + 8",
	"settings.token_mode":                   "where each request's token came from: none (one static token), per-request (fetched from the in-process issuer before every request) or cached (fetched once per token lifetime per client)",
	"settings.token_fetch_ms":               "the in-process issuer's time per token fetch, ms; 0 with token_mode none",
	"settings.server_idle_timeout_s":        "the in-process server's idle timeout (http.Server.IdleTimeout, -server-idle-timeout), seconds; 0: Go's default",
	"settings.server_max_requests_per_conn": "the in-process server closes a connection after this many requests (-server-max-requests); 0: no limit",
}

// machineDefs define machine.
var machineDefs = map[string]string{
	"machine.os":             "operating system (GOOS)",
	"machine.arch":           "architecture (GOARCH)",
	"machine.cpu_model":      "the first model name of /proc/cpuinfo; empty when unknown",
	"machine.num_cpu":        "logical CPUs (runtime.NumCPU)",
	"machine.gomaxprocs":     "GOMAXPROCS during the runs",
	"machine.go_version":     "the Go release the binary was built with",
	"machine.load_avg_start": "1-minute load average before the first run (Linux; null elsewhere); above about half the CPUs, other processes competed for them",
	"machine.load_avg_end":   "1-minute load average after the last run (Linux; null elsewhere)",
}

// protoDefs define protos[].
var protoDefs = map[string]string{
	"protos.proto":   "the protocol of these runs: http, tls or h2c",
	"protos.url":     "the URL the requests went to; through the proxy when there is one",
	"protos.server":  "what the server is: the in-process reference server and what it offers, or an external one",
	"protos.proxy":   "the simulated network and what the proxy costs by itself; null without -rtt or -bandwidth",
	"protos.modes":   "one entry per mode run over this protocol",
	"protos.skipped": "modes with no run over this protocol, and why",
	"protos.notes":   "caveats about these runs, such as connections still open when the next run started",
	"protos.verdict": "the conclusion over this protocol, computed from its runs: warmpool against the per-request pattern (or Go's default client), Go's default client and a hand-tuned net/http client, with its errors if it had any",
}

// proxyDefs define protos[].proxy.
var proxyDefs = map[string]string{
	"proxy.kind":            "the proxy: toxiproxy, its version, in-process on 127.0.0.1",
	"proxy.rtt_ms":          "simulated round-trip time, ms",
	"proxy.upstream_ms":     "latency added client → server, ms",
	"proxy.downstream_ms":   "latency added server → client, ms",
	"proxy.handshake_ms":    "delay before the first bytes of each connection, standing for the TCP handshake, which a loopback proxy cannot delay, ms",
	"proxy.jitter_ms":       "± variation of each direction's latency, ms",
	"proxy.bandwidth_kbps":  "cap on each direction of each connection, KB/s; 0: none",
	"proxy.direct_p50_us":   "p50 of sequential keep-alive requests straight to the server, µs",
	"proxy.proxied_p50_us":  "p50 of the same through the proxy without delays, µs",
	"proxy.overhead_p50_us": "proxied_p50_us − direct_p50_us: what the proxy costs by itself, µs",
	"proxy.network_p50_us":  "p50 of the same through the proxy with the simulated network, µs",
	"proxy.requests":        "requests per leg of that measurement, at most",
}

// skippedDefs define protos[].skipped[].
var skippedDefs = map[string]string{
	"skipped.mode":   "the mode not run",
	"skipped.reason": "why it has no run over this protocol",
}

// modeDefs define protos[].modes[]: the main figures keep their bare names.
var modeDefs = map[string]string{
	"mode":                              "per-request: a new http.Client and transport per request; default: http.DefaultClient (a clone of Go's default transport); default-h1: the same held to HTTP/1.1; tuned: a bare http.Client tuned by hand (HTTP/1.1, MaxIdleConnsPerHost = MaxConnsPerHost = tuned_max_conns); warmpool: warmpool's client over HTTP/1.1; warmpool-h2: warmpool's client over HTTP/2",
	"protocols":                         "responses by protocol, as net/http names it (HTTP/1.1, HTTP/2.0)",
	"requests":                          "requests that completed: ok + errors (cancelled_at_stop apart)",
	"ok":                                "requests answered 2xx with the body read to the end",
	"errors":                            "failed requests: total, by_kind (warmpool.ErrorKind), and the coarse groups timeout, conn, status and other",
	"status_codes":                      "non-2xx answers by status code",
	"error_samples":                     "the first distinct error messages, at most 5, each after its kind",
	"cancelled_at_stop":                 "requests still in flight when the run's grace period after -duration ended; not errors",
	"elapsed_s":                         "the run's elapsed time, from the first request to the last answer, seconds (summed over its slices)",
	"req_per_s":                         "successful requests per second of the run's elapsed time, from the first request to the last answer",
	"latency_us":                        "successful requests only, microseconds; closed model: from send to the body read to the end; open model: from the scheduled send time, so waiting for a free worker counts",
	"latency_curve":                     "latency by percentile, dense towards the tail, for charts",
	"server_conns_accepted":             "connections the server accepted during the run (its own count); null when unknown",
	"server_conns_accepted_second_half": "connections the server accepted after half of the run's duration: churn in the steady state, past the warm-up; null when unknown",
	"server_peak_open":                  "most connections open at once at the server during the run; null when unknown (external servers)",
	"client_reuse_rate":                 "share of requests sent on a connection that had served before (httptrace GotConnInfo.Reused, or warmpool's Stats: see tls_from)",
	"dials":                             "TCP connections the client dialed",
	"tls_handshakes":                    "TLS handshakes the client made",
	"dial_us_per_request":               "total time in TCP connect over all requests ÷ requests (httptrace ConnectStart..ConnectDone)",
	"tls_us_per_request":                "total time in TLS handshakes ÷ requests (httptrace TLSHandshakeStart..Done)",
	"tls_from":                          `where client_reuse_rate, dials, tls_handshakes and the per-request times come from: "httptrace", or "warmpool Stats" for warmpool, which the bench does not trace (a second trace would cost only warmpool)`,
	"cpu":                               "getrusage(RUSAGE_SELF) user+sys over the run ÷ requests: the whole process, so it includes the in-process server and proxy",
	"bytes_sent":                        "request body bytes of requests that got a response (not headers, not TLS)",
	"bytes_received":                    "response body bytes read (not headers, not TLS)",
	"open_model":                        "the open model's figures; null in the closed model",
	"pool":                              "warmpool's own Stats at the end of the run (summed over its slices); null for the other modes",
	"http_client":                       "a warmpool mode's effective settings, by the YAML keys of the http_client block (durations as Go durations); enable_http2 and h2c are the mode's; null for the other modes",
	"token":                             "token mode per-request or cached, else null: what the run's tokens cost",
	"vs_per_request":                    "this mode against per-request, same protocol, same invocation; null without a per-request run that succeeded",
	"vs_default":                        "this mode against default, same protocol, same invocation; null without a default run that succeeded",
	"vs_tuned":                          "this mode against tuned, same protocol, same invocation; null without a tuned run that succeeded",
}

// modeObjectDefs define the objects of a mode.
var modeObjectDefs = map[string]string{
	"errors.total": "failed requests, every kind",

	"latency_us.min":   "fastest successful request, exact, µs",
	"latency_us.mean":  "mean of the successful requests, µs",
	"latency_us.p50":   "median, µs (HdrHistogram, 3 significant digits)",
	"latency_us.p90":   "90th percentile, µs",
	"latency_us.p99":   "99th percentile, µs",
	"latency_us.p99_9": "99.9th percentile, µs",
	"latency_us.max":   "slowest successful request, exact, µs",

	"latency_curve.percentile": "a percentile, 0 to 100",
	"latency_curve.us":         "the latency at that percentile, µs",

	"cpu.user_s":         "user CPU time of the whole process over the run, seconds",
	"cpu.sys_s":          "system CPU time of the whole process over the run, seconds",
	"cpu.us_per_request": "(user + sys) ÷ completed requests, µs",

	"open_model.scheduled": "requests due within the duration",
	"open_model.unsent":    "requests due but not sent: no free worker before the end",
	"open_model.late":      "requests started more than 1 ms after they were due, for want of a free worker",
}

// poolDefs define a warmpool mode's pool: warmpool.Stats at the end of the
// run, under its own JSON names.
var poolDefs = map[string]string{
	"pool.hosts":                     "the same figures per dialed address (host:port), as warmpool.Stats.Hosts has them",
	"pool.calls":                     "calls made through the client (Do), each once however many attempts it took",
	"pool.calls_failed":              "calls that ended in an error (not counting non-2xx answers)",
	"pool.retries":                   "attempts after the first, across hosts",
	"pool.budget_refusals":           "retries the retry budget refused",
	"pool.token_fetches":             "calls to the token source, through warmpool's cache",
	"pool.token_fetch_failures":      "calls to the token source that failed",
	"pool.ejections":                 "times an endpoint of a balanced host name was ejected",
	"pool.open":                      "connections open at the end of the last slice, before the client closed",
	"pool.in_use":                    "connections serving a request at the end of the last slice",
	"pool.idle":                      "open connections serving none at the end of the last slice",
	"pool.dialing":                   "connections being dialed at the end of the last slice",
	"pool.in_flight":                 "requests in flight at the end of the last slice",
	"pool.waiting":                   "requests waiting for a connection at the end of the last slice",
	"pool.peak_in_flight":            "the most requests in flight at once: the concurrency the pool served",
	"pool.created":                   "connections warmpool opened",
	"pool.dials_avoided":             "dials net/http asked for that warmpool's dial gate held back and dropped, a connection having come free first",
	"pool.closed":                    "connections closed, for any reason",
	"pool.closed_by":                 "connections closed, by reason (warmpool.CloseReasonNames)",
	"pool.dial_failures":             "failed attempts to open a connection, by kind (warmpool.DialFailureKinds)",
	"pool.dial_time_ns":              "total TCP connect time of the connections created, ns",
	"pool.tls_handshakes":            "TLS handshakes warmpool made, in its dialer",
	"pool.tls_handshake_time_ns":     "the total duration of warmpool's TLS handshakes, ns",
	"pool.requests":                  "requests that got a connection",
	"pool.reused":                    "of those, requests sent on a connection that had served before",
	"pool.reuse_rate":                "reused ÷ requests",
	"pool.pool_timeouts":             "requests that found every connection busy for pool_timeout (ErrPoolTimeout)",
	"pool.waits":                     "requests that waited for a connection, every max_connections being busy",
	"pool.wait_time_ns":              "the total time requests waited for a connection, ns",
	"pool.failures":                  "attempts that ended in an error (no answer)",
	"pool.failures_by_kind":          "failures by warmpool.ErrorKind; absent when there was none",
	"pool.learned_idle_timeout_ns":   "the server's idle timeout as warmpool learned it, ns; 0: none learned",
	"pool.learned_idle_timeout_from": `how it was learned: "keep-alive header" or "server close"; absent when none was`,
	"pool.latency_min_ns":            "the fastest successful attempt of the last 15–30 s, connection to end of body, ns",
	"pool.latency_p50_ns":            "the median of those attempts, ns (within 20 %); 0 before 20 of them",
	"pool.latency_p95_ns":            "their 95th percentile, ns (within 20 %)",
	"pool.latency_p99_ns":            "their 99th percentile, ns (within 20 %)",
	"pool.concurrency_limit":         "the limit on requests in flight at the end (concurrency_limit); 0: none",
	"pool.limit_waiting":             "requests queued at the concurrency limit at the end",
	"pool.limit_waits":               "requests that queued at the concurrency limit (limit_queue_timeout)",
	"pool.limit_wait_time_ns":        "the total time they queued, ns",
	"pool.overloaded":                "requests the concurrency limit refused (ErrOverloaded), not sent",
	"pool.throttled":                 "requests client-side throttling refused (ErrOverloaded), not sent",
	"pool.circuit_opens":             "times the circuit breaker opened",
	"pool.circuit_rejections":        "calls the open circuit breaker failed at once (ErrCircuitOpen), not sent",
	"pool.deadline_rejections":       "requests not sent: their context had less time left than the fastest recent answer took",
	"pool.hedges":                    "hedged requests sent (hedge_after)",
	"pool.hedge_wins":                "hedged requests whose answer came first",
	"pool.findings":                  "the pool doctor's findings (doctor.Diagnose) on the run's Stats; empty when the pool was healthy",
}

// findingDefs define pool.findings[] (the rule's is the doctor's table).
var findingDefs = map[string]string{
	"findings.severity": "warning: requests succeeded but paid for new connections or waited for one; error: requests failed because of it",
	"findings.host":     `the dialed address ("host:port") it concerns; empty for the whole client`,
	"findings.message":  "what was seen, with the figure that fired the rule",
	"findings.fix":      "what to change, naming the setting by its config key",
	"findings.value":    "that figure: a share from 0 to 1, or a count",
}

// tokenDefs define a mode's token figures.
var tokenDefs = map[string]string{
	"token.issuer_fetches":       "tokens the in-process issuer handed out during the run: its own count",
	"token.fetch_us_mean":        "client-side time of one fetch (new connection, request, the issuer's delay, answer), µs",
	"token.fetch_us_per_request": "time spent fetching ÷ requests, µs; the latency and req/s include it",
}
