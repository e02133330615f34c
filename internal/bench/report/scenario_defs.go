package report

import "maps"

// scenarioDefinitions explain every field of a scenario's JSON report, keyed
// as definitions are (see there): bare for the report's own fields and a
// mode's (modes[]), parent.name for the rest. A mode's pool, the machine
// and the error counts share the main report's definitions.
// TestScenarioDefinitionsCoverEveryField walks reports of every scenario.
var scenarioDefinitions = buildScenarioDefinitions()

func buildScenarioDefinitions() map[string]string {
	d := map[string]string{}
	for _, section := range []map[string]string{scenarioReportDefs, scenarioSettingsDefs, scenarioModeDefs, scenarioObjectDefs,
		machineDefs, poolDefs, findingDefs, sharedScenarioDefs()} {
		maps.Copy(d, section)
	}
	for k, v := range phaseResultDefs {
		d["phases."+k] = v
		d["total."+k] = v
	}
	d["total.phase"] = `"all": the whole run, every phase's calls`
	d["total.offered_per_s"] = "calls due per second over the whole run"
	d["total.duration_s"] = "the whole run's length: the phases' lengths added, seconds"
	return d
}

// sharedScenarioDefs are the main report's definitions of the objects a
// scenario's report shares with it: the entries of warmpool's tables (a
// pool's close reasons and dial failures, the error kinds, the doctor's
// rules) and the error counts.
func sharedScenarioDefs() map[string]string {
	d := tableDefinitions()
	d["errors.total"] = modeObjectDefs["errors.total"]
	return d
}

var scenarioReportDefs = map[string]string{
	"schema_version":   "layout version of this JSON document; it grows when a field changes meaning or goes away, not when one is added",
	"scenario":         "overload, hang or slow-replica (warmpool bench -scenario)",
	"started_at":       "when the invocation started, UTC, to the second",
	"warmpool_version": "the warmpool that ran, as warmpool.BuildVersion says",
	"machine":          "where the runs ran",
	"settings":         "what the runs did, defaults filled in",
	"partial":          "true when the invocation was interrupted: modes then hold only the runs that finished",
	"partial_reason":   "how far an interrupted invocation got; empty when it finished",
	"modes":            "one entry per mode run, in run order",
	"targets":          "issue 16's done-when figures, held to the mode with the scenario's feature on",
	"verdict":          "what turning the feature on bought, in one line, from this invocation's figures",
	"notes":            "caveats that follow from the figures: dropped calls, a busy machine",
	"definitions":      "this map: what every field means",
}

var scenarioSettingsDefs = map[string]string{
	"settings.capacity_handlers": "the capacity server's handler slots: requests executed at once, at most",
	"settings.service_time_ms":   "the time one execution holds its slot, ms",
	"settings.capacity_per_s":    "the server's most executions per second: capacity_handlers ÷ service_time",
	"settings.deadline_ms":       "each call's own deadline, from its start, ms; 0: none of its own, request_timeout (plus 1 s) bounds it",
	"settings.request_timeout_s": "every mode's request_timeout (tuned net/http: http.Client.Timeout), seconds",
	"settings.method":            "the calls' method: POST of a 210-byte JSON question (overload, hang), or GET (slow-replica: hedging needs an idempotent request)",
	"settings.url":               "the URL called (the last mode's; every mode's server listens on the same port when it is free)",
	"settings.endpoints":         "the capacity servers, host:port",
	"settings.phases":            "the scenario's phases, back to back: a fixed rate each, calls scheduled from the phase's start (open model)",
	"settings.max_in_flight":     "the load's cap on calls at once (the largest phase's); a call due when it is reached is dropped, not sent",
	"settings.slow_replica":      "slow-replica: the endpoint that answers a share of its requests late; empty otherwise",
	"settings.slow_share":        "slow-replica: the share of the slow endpoint's requests it answers late (every 1/share-th, by arrival)",
	"settings.slow_delay_ms":     "slow-replica: how long a late answer's execution takes, ms",
	"settings.config_file":       "where the warmpool modes' configuration came from (-config, or WARMPOOL_* variables); empty: the defaults",

	"phases.name":        "the phase's name: calm, overload, after (overload); healthy, hung, recovered (hang); steady (slow-replica)",
	"phases.rate_per_s":  "calls scheduled per second in the phase",
	"phases.start_s":     "when the phase starts, from the start of the run, seconds",
	"phases.load_factor": "rate_per_s ÷ the capacity of one server",
	"phases.event":       `what happens to the server as the phase starts: "hang" (it reads requests and answers none), "recover" (it executes those it held, in order, then the new ones), or ""`,
}

var scenarioModeDefs = map[string]string{
	"mode":          "tuned-net/http: a bare http.Client (HTTP/1.1, MaxIdleConnsPerHost 100, no MaxConnsPerHost, Timeout request_timeout); warmpool: warmpool as configured; warmpool-adaptive, warmpool-breaker, warmpool-hedge-p95, warmpool-hedge-fixed: warmpool with the scenario's feature on",
	"feature":       "the setting the mode turns on, as YAML; empty for tuned net/http and warmpool",
	"http_client":   "a warmpool mode's effective settings, by YAML key; null for tuned net/http",
	"phases":        "the mode's figures per phase, by the phase its calls were due in",
	"total":         "the mode's figures over the whole run",
	"recovery":      "overload: how fast throughput came back after the overload; null otherwise",
	"hang":          "hang: the breaker's figures and how calls fared after the recovery; null otherwise",
	"replicas":      "slow-replica: each endpoint's server-side counts; null otherwise",
	"hedge_after":   "a hedging mode's hedge_after; empty otherwise",
	"hedges_sent":   "hedged requests warmpool sent (Stats.Hedges)",
	"hedges_won":    "of those, the ones whose answer came first (Stats.HedgeWins)",
	"pool":          "warmpool's Stats at the end of the run, before the client closed; null for tuned net/http",
	"timeline":      "the server and the client every 250 ms",
	"elapsed_s":     "the run's length, until its last call returned, seconds",
	"error_samples": "the first distinct error messages of failed calls (not fast fails), at most 5, each after its kind",
}

// phaseResultDefs define a phase's figures (phases[] and total).
var phaseResultDefs = map[string]string{
	"phase":               "the phase these figures are of",
	"offered_per_s":       "calls scheduled per second",
	"duration_s":          "the phase's length, seconds",
	"calls":               "calls due in the phase; each is counted once: ok + ok_late + fast_fails.count + errors.total + dropped + cut",
	"ok":                  "calls answered 2xx within the caller's deadline",
	"ok_late":             "calls answered 2xx after the caller's deadline",
	"goodput_per_s":       "ok ÷ duration_s: successes within the caller's deadline per second",
	"goodput_of_capacity": "goodput_per_s ÷ the capacity of the servers",
	"latency_us":          "latency of the ok calls, from when each was due (load.Record.Latency), µs",
	"fast_fails":          "calls the client failed at once without sending them: ErrOverloaded (the concurrency limit, or throttling), ErrCircuitOpen, or a deadline shorter than the fastest recent answer",
	"errors":              "every other failed call (a non-2xx answer included), by warmpool.ErrorKind and in the coarse groups",
	"error_latency_us":    "how long the failed calls (errors) took, each from its start to its error, µs",
	"dropped":             "calls due when the load had max_in_flight calls under way: never made",
	"cut":                 "calls cut short by the end of the run (its grace period)",
	"server":              "the server's own counts of the requests of these calls (X-Bench-Tag), after it worked through its queue",
}

var scenarioObjectDefs = map[string]string{
	"latency_us.count": "calls counted",
	"latency_us.p50":   "median, µs (HdrHistogram, 3 significant digits)",
	"latency_us.p99":   "99th percentile, µs",
	"latency_us.p99_9": "99.9th percentile, µs",
	"latency_us.max":   "the slowest, exact, µs",

	"error_latency_us.count": "failed calls counted",
	"error_latency_us.p50":   "median, µs",
	"error_latency_us.p99":   "99th percentile, µs",
	"error_latency_us.p99_9": "99.9th percentile, µs",
	"error_latency_us.max":   "the slowest, exact, µs",

	"fast_fails.count":      "calls failed fast",
	"fast_fails.by_reason":  "by reason: overloaded (the concurrency limit), throttled (client-side throttling), circuit_open, deadline (less time left than the fastest recent answer)",
	"fast_fails.latency_us": "their own time, from the call's start to its error, µs",
	"fast_fails.under_1ms":  "of those, the ones that failed in under 1 ms",

	"server.received":            "requests the servers read",
	"server.executed":            "executions: every request read is executed in full, its caller there or not (work left when the run ended is executed at once, and counted as it would have been)",
	"server.wasted":              "executions that started after their caller's deadline (X-Bench-Deadline): work for a caller that had given up",
	"server.wasted_share":        "wasted ÷ executed",
	"server.executions_per_call": "executed ÷ calls made (calls − dropped): above 1, extra requests (hedges, retries); below 1, calls not sent",

	"recovery.overload_end_s": "when the overload phase ended, from the start of the run, seconds",
	"recovery.back_after_s":   "from the end of the overload to the start of the first 250 ms window of calls due from which ≥ 95 % succeeded within their deadline for 1 s (or until the run ended), seconds; -1: never",
	"recovery.window_ms":      "the window, ms",

	"hang.hang_at_s":                   "when the server started to hang, from the start of the run, seconds",
	"hang.recovered_at_s":              "when it recovered, seconds",
	"hang.opened_after_s":              "from the hang to the first call the open breaker failed, seconds; -1: it never opened",
	"hang.circuit_open_fails":          "the calls the open breaker failed at once (ErrCircuitOpen)",
	"hang.open_for_s":                  "circuit_breaker_open_for of the mode, seconds; 0 without the breaker",
	"hang.first_success_after_s":       "from the recovery to the end of the first successful call, seconds; -1: none",
	"hang.first_success_took_s":        "that call's own time, seconds: a request the server held through the hang, or the breaker's probe",
	"hang.full_throughput_after_s":     "from the recovery to full throughput, as recovery.back_after_s, seconds; -1: never",
	"hang.failed_before_first_success": "calls due after the recovery that failed before the first success (the probe's wait)",
	"hang.lost":                        "calls due after the first success that failed: calls the recovered server would have served",
	"hang.held_by_server":              "requests the server received while it hung",
	"circuit_open_fails.count":         "calls the open breaker failed",
	"circuit_open_fails.by_reason":     "by reason: circuit_open",
	"circuit_open_fails.latency_us":    "their own time, from the call's start to its error, µs",
	"circuit_open_fails.under_1ms":     "of those, the ones that failed in under 1 ms",
	"replicas.addr":                    "the endpoint, host:port",
	"replicas.slow":                    "whether it is the slow one",
	"replicas.received":                "requests it read, hedges included",
	"replicas.executed":                "requests it executed",
	"replicas.slow_executions":         "executions that took slow_delay_ms",
	"replicas.share":                   "its share of the requests the endpoints read",
	"replicas.latency_us":              "latency of the successful calls it answered, from when each was due, µs",
	"targets.name":                     "the target",
	"targets.want":                     "what issue 16 asks",
	"targets.got":                      "what this run measured",
	"targets.met":                      "whether it was met",
	"timeline.at_s":                    "when the sample was taken, from the start of the run, seconds",
	"timeline.ok_per_s":                "calls that ended ok in the 250 ms before, per second",
	"timeline.executed_per_s":          "executions the servers finished in the 250 ms before, per second",
	"timeline.server_queued":           "requests waiting at the servers for a slot",
	"timeline.server_executing":        "executions under way",
	"timeline.in_flight":               "calls under way at the load (the caller's side)",
	"timeline.concurrency_limit":       "warmpool's concurrency limit (Stats.ConcurrencyLimit); 0: none",
	"timeline.latency_min_us":          "the fastest recent answer warmpool measured (Stats.LatencyMin), µs: what the adaptive limit and the deadline check compare with",
	"timeline.circuit_state":           `the most open breaker state over warmpool's hosts: "closed", "open" or "half_open"; empty for tuned net/http`,
	"timeline.overloaded":              "calls the concurrency limit refused so far (Stats.Overloaded)",
	"timeline.throttled":               "calls client-side throttling refused so far (Stats.Throttled)",
	"timeline.circuit_rejections":      "calls the open breaker failed so far (Stats.CircuitRejections)",
	"timeline.hedges":                  "hedged requests sent so far (Stats.Hedges)",
}
