package bench

import (
	"strconv"
	"time"
)

// SchemaVersion numbers the JSON report's layout; it grows when a field
// changes meaning or goes away (adding fields does not change it).
const SchemaVersion = 1

// Report is the outcome of one Run. Field names are stable: the JSON form is
// the machine-readable report.
type Report struct {
	SchemaVersion int       `json:"schema_version"`
	StartedAt     time.Time `json:"started_at"`
	// WarmpoolVersion is warmpool.BuildVersion of the binary that ran.
	WarmpoolVersion string         `json:"warmpool_version"`
	Settings        ReportSettings `json:"settings"`
	Machine         Machine        `json:"machine"`
	// Partial is set when the invocation was interrupted: Protos then hold
	// only the runs that finished, and PartialReason says how far it got.
	Partial       bool          `json:"partial"`
	PartialReason string        `json:"partial_reason"`
	Protos        []ProtoResult `json:"protos"`
	Notes         []string      `json:"notes"`
	// Hints are what to change when the runs went wrong in a way with a
	// common cause, such as a server that wants a token.
	Hints []string `json:"hints"`
	// Verdict concludes over every protocol, from the figures of this
	// invocation; each ProtoResult has its own.
	Verdict     string            `json:"verdict"`
	Definitions map[string]string `json:"definitions"`
}

// ReportSettings records what the runs did.
type ReportSettings struct {
	Target          string   `json:"target"` // "in-process" or the URL
	Protos          []string `json:"protos"`
	Modes           []string `json:"modes"`
	LoadModel       string   `json:"load_model"` // "closed" or "open"
	Concurrency     int      `json:"concurrency"`
	RatePerSecond   float64  `json:"rate_per_second"` // open model; 0 for closed
	DurationPerRunS float64  `json:"duration_per_run_s"`
	RequestsPerRun  int64    `json:"requests_per_run"` // 0: bounded by duration only
	Rounds          int      `json:"rounds"`           // slices per run, interleaved between modes
	Runs            int      `json:"runs"`
	RTTMs           float64  `json:"rtt_ms"`
	JitterMs        float64  `json:"jitter_ms"`
	BandwidthKBps   int64    `json:"bandwidth_kbps"`
	RequestBytes    int      `json:"request_bytes"`
	ServerDelayMs   float64  `json:"server_delay_ms"`
	ConfigFile      string   `json:"config_file"`
	Insecure        bool     `json:"insecure"`
	TunedMaxConns   int      `json:"tuned_max_conns"`
	// TokenMode is none, per-request or cached; TokenFetchMs is the token
	// issuer's time per fetch, 0 with none.
	TokenMode    string  `json:"token_mode"`
	TokenFetchMs float64 `json:"token_fetch_ms"`
	// The in-process server's idle timeout (0: Go's default) and its cap on
	// requests per connection (0: none).
	ServerIdleTimeoutS       float64 `json:"server_idle_timeout_s"`
	ServerMaxRequestsPerConn int64   `json:"server_max_requests_per_conn"`
}

// ProtoResult holds the runs of every mode over one protocol, against one
// server.
type ProtoResult struct {
	Proto   string       `json:"proto"`
	URL     string       `json:"url"`
	Server  string       `json:"server"`
	Proxy   *ProxyResult `json:"proxy"`
	Modes   []ModeResult `json:"modes"`
	Skipped []Skipped    `json:"skipped"`
	Notes   []string     `json:"notes"`
	Verdict string       `json:"verdict"` // the conclusion over this protocol
}

// Skipped is a mode with no run over a protocol.
type Skipped struct {
	Mode   string `json:"mode"`
	Reason string `json:"reason"`
}

// ProxyResult describes the simulated network and what the proxy costs by
// itself, measured before the runs with sequential keep-alive requests.
type ProxyResult struct {
	Kind          string  `json:"kind"`
	RTTMs         float64 `json:"rtt_ms"`
	UpstreamMs    float64 `json:"upstream_ms"`
	DownstreamMs  float64 `json:"downstream_ms"`
	HandshakeMs   float64 `json:"handshake_ms"`
	JitterMs      float64 `json:"jitter_ms"`
	BandwidthKBps int64   `json:"bandwidth_kbps"`
	// P50 of sequential keep-alive requests: straight to the server,
	// through the proxy without toxics, and through the proxy as configured.
	DirectP50Us   int64 `json:"direct_p50_us"`
	ProxiedP50Us  int64 `json:"proxied_p50_us"`
	OverheadP50Us int64 `json:"overhead_p50_us"`
	NetworkP50Us  int64 `json:"network_p50_us"`
	Requests      int64 `json:"requests"` // per leg, at most
}

// ModeResult is every figure of one run: one mode over one protocol.
type ModeResult struct {
	Mode            string           `json:"mode"`
	Protocols       map[string]int64 `json:"protocols"` // responses by protocol, "HTTP/1.1", "HTTP/2.0"
	Requests        int64            `json:"requests"`  // completed: ok + errors
	OK              int64            `json:"ok"`
	Errors          ErrorCounts      `json:"errors"`
	StatusCodes     map[string]int64 `json:"status_codes"` // non-2xx answers by status code
	ErrorSamples    []string         `json:"error_samples"`
	CancelledAtStop int64            `json:"cancelled_at_stop"`
	ElapsedS        float64          `json:"elapsed_s"`
	ReqPerS         float64          `json:"req_per_s"` // ok / elapsed
	Latency         Latency          `json:"latency_us"`
	LatencyCurve    []CurvePoint     `json:"latency_curve"`
	// Server side; null when unknown.
	ServerAccepted *int64 `json:"server_conns_accepted"`
	// ServerAcceptedSecondHalf counts those accepted after half of the
	// duration: the steady state, past the warm-up.
	ServerAcceptedSecondHalf *int64 `json:"server_conns_accepted_second_half"`
	ServerPeakOpen           *int64 `json:"server_peak_open"`
	// Client side, from httptrace.
	ReuseRate        float64 `json:"client_reuse_rate"`
	Dials            int64   `json:"dials"`
	TLSHandshakes    int64   `json:"tls_handshakes"`
	DialUsPerRequest float64 `json:"dial_us_per_request"`
	TLSUsPerRequest  float64 `json:"tls_us_per_request"`
	// TLSFrom says where the TLS figures come from: "httptrace", or
	// "warmpool Stats" when the client does its own handshakes.
	TLSFrom       string       `json:"tls_from"`
	CPU           *CPU         `json:"cpu"`
	BytesSent     int64        `json:"bytes_sent"`
	BytesReceived int64        `json:"bytes_received"`
	Open          *Open        `json:"open_model"`
	Pool          *PoolSummary `json:"pool"`
	// HTTPClient is a warmpool mode's effective http_client settings, by
	// YAML key; null for the other modes.
	HTTPClient   map[string]any `json:"http_client"`
	Token        *TokenResult   `json:"token"` // null with token mode none
	VsPerRequest *Ratio         `json:"vs_per_request"`
	VsDefault    *Ratio         `json:"vs_default"`
	VsTuned      *Ratio         `json:"vs_tuned"`
}

// Open holds the open model's figures.
type Open struct {
	// Scheduled is how many requests were due within the duration.
	Scheduled int64 `json:"scheduled"`
	// Unsent were due but found no free worker before the end.
	Unsent int64 `json:"unsent"`
	// Late started more than 1 ms after they were due, for want of a worker.
	Late int64 `json:"late"`
}

// Ratio compares a mode with a base mode of the same protocol. Throughput
// is req/s ÷ the base's and P50Speedup the base's p50 ÷ this p50: above 1,
// this mode is better, for both. P50 is p50 ÷ the base's (below 1: faster),
// kept from the first schema.
type Ratio struct {
	Throughput float64 `json:"throughput"`
	P50Speedup float64 `json:"p50_speedup"`
	P50        float64 `json:"p50"`
}

// modeResult turns what a run measured into its report.
func modeResult(mode string, r *runResult, cpu *CPU) ModeResult {
	t := &r.tally
	lat, curve := summarize(r.hist, t.lo, t.hi)
	m := ModeResult{
		Mode:            mode,
		Protocols:       t.protocols,
		Requests:        r.completed(),
		OK:              t.ok,
		Errors:          NewErrorCounts(t.errs),
		ErrorSamples:    t.samples,
		CancelledAtStop: t.cancelled,
		ElapsedS:        r.elapsed.Seconds(),
		Latency:         lat,
		LatencyCurve:    curve,
		Dials:           r.dials,
		TLSFrom:         "httptrace",
		TLSHandshakes:   r.handshakes,
		CPU:             cpu,
		BytesSent:       t.sent,
		BytesReceived:   t.received,
	}
	if m.ErrorSamples == nil {
		m.ErrorSamples = []string{}
	}
	m.StatusCodes = map[string]int64{}
	for code, n := range t.codes {
		m.StatusCodes[strconv.Itoa(code)] = n
	}
	if r.elapsed > 0 {
		m.ReqPerS = float64(t.ok) / r.elapsed.Seconds()
	}
	if t.gotConn > 0 {
		m.ReuseRate = float64(t.reused) / float64(t.gotConn)
	}
	if n := m.Requests; n > 0 {
		m.DialUsPerRequest = float64(r.dialTime.Nanoseconds()) / 1e3 / float64(n)
		m.TLSUsPerRequest = float64(r.tlsTime.Nanoseconds()) / 1e3 / float64(n)
	}
	if r.expected > 0 {
		sent := m.Requests + t.cancelled
		m.Open = &Open{Scheduled: r.expected, Unsent: max(r.expected-sent, 0), Late: t.late}
	}
	return m
}
