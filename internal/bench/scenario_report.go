package bench

import "time"

// ScenarioSchemaVersion numbers the layout of a scenario's JSON report, as
// SchemaVersion does the main report's.
const ScenarioSchemaVersion = 1

// ScenarioReport is the outcome of RunScenario: every mode's run of one
// scenario against the same capacity server. Package report adds the
// targets, the verdict and the definitions (report.FinishScenario).
type ScenarioReport struct {
	SchemaVersion   int                    `json:"schema_version"`
	Scenario        string                 `json:"scenario"`
	StartedAt       time.Time              `json:"started_at"`
	WarmpoolVersion string                 `json:"warmpool_version"`
	Machine         Machine                `json:"machine"`
	Settings        ScenarioReportSettings `json:"settings"`
	Partial         bool                   `json:"partial"`
	PartialReason   string                 `json:"partial_reason"`
	Modes           []ScenarioMode         `json:"modes"`
	Targets         []Target               `json:"targets"`
	Verdict         string                 `json:"verdict"`
	Notes           []string               `json:"notes"`
	Definitions     map[string]string      `json:"definitions"`
}

// ScenarioReportSettings is what the runs did, defaults filled in.
type ScenarioReportSettings struct {
	Handlers        int         `json:"capacity_handlers"`
	ServiceTimeMs   float64     `json:"service_time_ms"`
	CapacityPerS    float64     `json:"capacity_per_s"` // handlers ÷ service time
	DeadlineMs      float64     `json:"deadline_ms"`    // each call's own; 0: request_timeout bounds it
	RequestTimeoutS float64     `json:"request_timeout_s"`
	Method          string      `json:"method"`
	URL             string      `json:"url"`
	Endpoints       []string    `json:"endpoints"`
	Phases          []PhaseSpec `json:"phases"`
	MaxInFlight     int         `json:"max_in_flight"` // the load's cap on calls at once
	SlowReplica     string      `json:"slow_replica"`  // slow-replica: the slow endpoint
	SlowShare       float64     `json:"slow_share"`
	SlowDelayMs     float64     `json:"slow_delay_ms"`
	ConfigFile      string      `json:"config_file"`
}

// PhaseSpec is one phase of a scenario: a fixed rate for a while, and what
// happens to the server as it starts.
type PhaseSpec struct {
	Name      string  `json:"name"`
	RatePerS  float64 `json:"rate_per_s"`
	DurationS float64 `json:"duration_s"`
	StartS    float64 `json:"start_s"`     // from the start of the run
	Load      float64 `json:"load_factor"` // rate ÷ capacity
	Event     string  `json:"event"`       // "", "hang" or "recover"
}

// ScenarioMode is one mode's run of the scenario.
type ScenarioMode struct {
	Mode       string         `json:"mode"`
	Feature    string         `json:"feature"`     // the config it turns on, as YAML; "" for none
	HTTPClient map[string]any `json:"http_client"` // a warmpool mode's effective settings
	Phases     []PhaseResult  `json:"phases"`
	Total      PhaseResult    `json:"total"`
	// Overload: the time after the overload until throughput is back.
	Recovery *Recovery `json:"recovery"`
	// Hang: the breaker's figures.
	Hang *HangResult `json:"hang"`
	// Slow replica: each endpoint's server-side counts.
	Replicas    []ReplicaResult `json:"replicas"`
	HedgeAfter  string          `json:"hedge_after"` // a hedging mode's hedge_after
	HedgesSent  int64           `json:"hedges_sent"`
	HedgesWon   int64           `json:"hedges_won"`
	Pool        *PoolSummary    `json:"pool"` // warmpool's Stats at the end
	Timeline    []TimelinePoint `json:"timeline"`
	ElapsedS    float64         `json:"elapsed_s"`
	ErrorSample []string        `json:"error_samples"`
}

// PhaseResult is what the calls of one phase (or of the whole run) did.
// Every call due is counted once: ok + ok_late + fast_fails.count +
// errors.total + dropped + cut = calls.
type PhaseResult struct {
	Name              string        `json:"phase"`
	OfferedPerS       float64       `json:"offered_per_s"`
	DurationS         float64       `json:"duration_s"`
	Calls             int64         `json:"calls"`
	OK                int64         `json:"ok"`
	OKLate            int64         `json:"ok_late"`
	GoodputPerS       float64       `json:"goodput_per_s"`
	GoodputOfCapacity float64       `json:"goodput_of_capacity"`
	Latency           Percentiles   `json:"latency_us"`
	FastFails         FastFails     `json:"fast_fails"`
	Errors            ErrorCounts   `json:"errors"`
	ErrorLatency      Percentiles   `json:"error_latency_us"` // the failed calls' own time
	Dropped           int64         `json:"dropped"`
	Cut               int64         `json:"cut"`
	Server            ServerSummary `json:"server"`
}

// Percentiles summarize latencies, µs; zero when there were none.
type Percentiles struct {
	Count int64 `json:"count"`
	P50   int64 `json:"p50"`
	P99   int64 `json:"p99"`
	P999  int64 `json:"p99_9"`
	Max   int64 `json:"max"`
}

// FastFails are calls the client failed at once without sending them.
type FastFails struct {
	Count    int64            `json:"count"`
	ByReason map[string]int64 `json:"by_reason"`
	Latency  Percentiles      `json:"latency_us"`
	Under1ms int64            `json:"under_1ms"`
}

// ServerSummary is the server's own count of a phase's requests.
type ServerSummary struct {
	Received          int64   `json:"received"`
	Executed          int64   `json:"executed"`
	Wasted            int64   `json:"wasted"`
	WastedShare       float64 `json:"wasted_share"`
	ExecutionsPerCall float64 `json:"executions_per_call"`
}

// Recovery is how fast an overloaded mode came back.
type Recovery struct {
	OverloadEndS float64 `json:"overload_end_s"`
	// BackAfterS: from the end of the overload to the start of the first
	// window from which ≥ 95 % of the calls due succeeded for a second (or
	// until the run ended); -1: never.
	BackAfterS float64 `json:"back_after_s"`
	WindowMs   float64 `json:"window_ms"`
}

// HangResult is the hang scenario's figures for one mode.
type HangResult struct {
	HangAtS      float64 `json:"hang_at_s"`
	RecoveredAtS float64 `json:"recovered_at_s"`
	// OpenedAfterS: from the hang to the first call failed by the open
	// breaker; -1: it never opened.
	OpenedAfterS float64 `json:"opened_after_s"`
	// CircuitOpenFails are the calls the breaker failed at once.
	CircuitOpenFails FastFails `json:"circuit_open_fails"`
	OpenForS         float64   `json:"open_for_s"`
	// From the recovery: the first success's end, its own latency, and
	// the time until full throughput (as Recovery.BackAfterS); -1: never.
	FirstSuccessAfterS   float64 `json:"first_success_after_s"`
	FirstSuccessTookS    float64 `json:"first_success_took_s"`
	FullThroughputAfterS float64 `json:"full_throughput_after_s"`
	// FailedBeforeFirstSuccess counts calls due after the recovery that
	// failed before the first success came; Lost those due after it that
	// failed: calls the recovered server would have served.
	FailedBeforeFirstSuccess int64 `json:"failed_before_first_success"`
	Lost                     int64 `json:"lost"`
	// Held counts requests the server received while it hung.
	Held int64 `json:"held_by_server"`
}

// ReplicaResult is one endpoint's server-side counts.
type ReplicaResult struct {
	Addr     string  `json:"addr"`
	Slow     bool    `json:"slow"`
	Received int64   `json:"received"`
	Executed int64   `json:"executed"`
	SlowRuns int64   `json:"slow_executions"`
	Share    float64 `json:"share"`
	// Latency of the successes it answered, from the caller's side.
	Latency Percentiles `json:"latency_us"`
}

// TimelinePoint is the state every TimelineStep: the server's, and a warmpool
// client's Stats.
type TimelinePoint struct {
	AtS               float64 `json:"at_s"`
	OKPerS            float64 `json:"ok_per_s"` // successes ending in the step, per second
	ExecutedPerS      float64 `json:"executed_per_s"`
	Queued            int64   `json:"server_queued"`
	Executing         int64   `json:"server_executing"`
	InFlight          int64   `json:"in_flight"`
	ConcurrencyLimit  int64   `json:"concurrency_limit"`
	LatencyMinUs      int64   `json:"latency_min_us"`
	CircuitState      string  `json:"circuit_state"`
	Overloaded        int64   `json:"overloaded"`
	Throttled         int64   `json:"throttled"`
	CircuitRejections int64   `json:"circuit_rejections"`
	Hedges            int64   `json:"hedges"`
}

// Target is one of the "done when" figures, held to this run.
type Target struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	Met  bool   `json:"met"`
}
