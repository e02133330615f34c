package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"time"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/load"
)

// Mode names, in the order Run runs them.
const (
	// ModePerRequest builds a new http.Client and transport (a clone of Go's
	// default transport) for every request and closes it after: a new TCP
	// connection, and TLS handshake, per request.
	ModePerRequest = "per-request"
	// ModeDefault is http.DefaultClient: no timeout, a fresh clone of
	// http.DefaultTransport (2 idle connections per host, HTTP/2 by ALPN).
	ModeDefault = "default"
	// ModeDefaultH1 is ModeDefault held to HTTP/1.1: what Go's default client
	// does against a TLS server that does not speak HTTP/2. It runs over TLS
	// only: over cleartext, default already speaks HTTP/1.1.
	ModeDefaultH1 = "default-h1"
	// ModeTuned is a bare http.Client tuned by hand for the load: HTTP/1.1,
	// MaxIdleConnsPerHost = MaxConnsPerHost = concurrency + TunedHeadroom, and
	// the timeouts of warmpool's defaults.
	ModeTuned = "tuned"
	// ModeWarmpool is a warmpool.Client speaking HTTP/1.1.
	ModeWarmpool = "warmpool"
	// ModeWarmpoolH2 is a warmpool.Client speaking HTTP/2: by ALPN over TLS,
	// by prior knowledge (h2c) over cleartext. It has no run over plain http.
	ModeWarmpoolH2 = "warmpool-h2"
)

// AllModes lists every mode in run order.
var AllModes = []string{ModePerRequest, ModeDefault, ModeDefaultH1, ModeTuned, ModeWarmpool, ModeWarmpoolH2}

// Protocols between the client and the server.
const (
	ProtoHTTP = "http" // cleartext HTTP/1.1
	ProtoTLS  = "tls"  // HTTPS; the in-process server offers h2 and http/1.1 by ALPN
	ProtoH2C  = "h2c"  // cleartext, the server also speaks HTTP/2 by prior knowledge
)

// AllProtos lists the protocols Run knows; DefaultProtos are run when none
// are given.
var (
	AllProtos     = []string{ProtoHTTP, ProtoTLS, ProtoH2C}
	DefaultProtos = []string{ProtoHTTP, ProtoTLS}
)

// Defaults for the zero values of Settings.
const (
	DefaultConcurrency = 32
	// DefaultDuration is the length of each run when there are at most
	// AutoDurationRuns runs; with more, ShortDuration keeps the whole
	// invocation under a minute.
	DefaultDuration  = 5 * time.Second
	ShortDuration    = 3 * time.Second
	AutoDurationRuns = 6
	// TunedHeadroom is what the tuned mode adds to the concurrency for its
	// connection limits.
	TunedHeadroom = 8
	// MaxConcurrency bounds -concurrency.
	MaxConcurrency = 10000
	// MaxRounds bounds -rounds.
	MaxRounds = 100
)

// DefaultBody is the request body: a JSON question of 210 bytes, the size of
// a typical frontend-to-backend call.
var DefaultBody = []byte(`{"question":"What is the answer to the ultimate question of life, the universe and everything?",` +
	`"session":"5f0c2a4e-9b1d-4c3e-8f7a-2d6b1e0c9a84","history":[],"options":{"model":"deep-thought","max_tokens":128}}`)

// Settings describes one benchmark invocation. The zero value of a field
// means its default.
type Settings struct {
	// Target is the URL of a server the user runs, such as
	// "http://127.0.0.1:8080/answer". Empty means: start the reference server
	// in-process on loopback, once per protocol.
	Target string
	// Protos are the protocols to run, in order. Default DefaultProtos; for an
	// external Target it follows the scheme (http or tls), and only "h2c" may
	// be given, for an http:// server that speaks HTTP/2 by prior knowledge.
	Protos []string
	// Modes are the modes to run, in AllModes order whatever their order
	// here. Default AllModes.
	Modes []string
	// Duration bounds each run (one mode over one protocol). Zero means
	// DefaultDuration, or ShortDuration when there are more than
	// AutoDurationRuns runs.
	Duration time.Duration
	// Requests bounds each run by count; zero means no bound but Duration.
	Requests int64
	// Rounds splits each run into this many slices, run in turn with the
	// other modes' (round 1 of every mode, then round 2...), so that a
	// change in the machine's background load falls on every mode alike.
	// Each slice starts with a new client. Default 1.
	Rounds int
	// Concurrency is the number of workers (closed model) or the cap on
	// requests in flight (open model). Default DefaultConcurrency.
	Concurrency int
	// Rate, if > 0, selects the open model: requests are scheduled at this
	// many per second from the start of the run, and latency is measured from
	// the scheduled time, so a slow server cannot hide its queueing.
	Rate float64
	// RTT, if > 0, puts a latency-injecting TCP proxy (toxiproxy, in-process)
	// between client and server: RTT/2 each way, and one more RTT before the
	// first bytes of each connection for the TCP handshake. Whole
	// milliseconds.
	RTT time.Duration
	// Jitter varies the latency of each chunk by up to ± Jitter each way.
	// Whole milliseconds; needs the proxy (RTT > 0).
	Jitter time.Duration
	// BandwidthKBps, if > 0, caps each direction of each connection through
	// the proxy at this many KB/s.
	BandwidthKBps int64
	// Body is the request body, JSON. Default DefaultBody.
	Body []byte
	// Token is the bearer token. For an external Target it is sent if not
	// empty; the in-process server requires a random one made per run.
	Token string
	// TokenMode is where each request's token comes from: TokenNone (one
	// static token), TokenPerRequest or TokenCached (from a fake issuer on
	// 127.0.0.1, started per protocol with the in-process server; not with
	// a Target). Default TokenNone.
	TokenMode string
	// TokenFetch is how long the issuer takes per fetch, before it answers,
	// at most MaxTokenFetch. Zero means DefaultTokenFetch. Only with a token
	// mode.
	TokenFetch time.Duration
	// Config is the warmpool configuration of the warmpool modes; nil means
	// warmpool.DefaultConfig(). The HTTP/2 settings are set per mode.
	Config *warmpool.Config
	// ConfigFile names where Config came from, for the report.
	ConfigFile string
	// Insecure skips TLS certificate verification in every mode (external
	// targets with a self-signed certificate).
	Insecure bool
	// ServerDelay is the service time of the in-process server per request.
	ServerDelay time.Duration
	// ServerIdleTimeout is the in-process server's idle timeout
	// (http.Server.IdleTimeout); zero means Go's default. Not with a Target.
	ServerIdleTimeout time.Duration
	// ServerMaxRequests makes the in-process server close a connection
	// after this many requests; zero means no limit. Not with a Target.
	ServerMaxRequests int
	// Progress, if not nil, receives a line as each run ends, and, every
	// ProgressEvery while one runs, a status line with the time left, which
	// the next overwrites (a carriage return, for a terminal).
	Progress io.Writer
	// ProgressEvery is how often the status line is updated; zero means
	// one second.
	ProgressEvery time.Duration

	// settleTimeout bounds the wait for the server to see the previous mode's
	// connections close; zero means 3s.
	settleTimeout time.Duration
	// calibrationRequests bounds each leg of the proxy calibration; zero
	// means 200.
	calibrationRequests int64
}

// Validate reports the first setting out of range. Run calls it; a caller
// may call it first to tell bad usage from a failed run.
func (s Settings) Validate() error {
	_, err := s.normalize()
	return err
}

// normalize validates s and fills in every default but Duration's, which
// needs the run count.
func (s Settings) normalize() (Settings, error) {
	if s.Concurrency == 0 {
		s.Concurrency = DefaultConcurrency
	}
	if s.Concurrency < 1 || s.Concurrency > MaxConcurrency {
		return s, fmt.Errorf("concurrency %d out of range 1..%d", s.Concurrency, MaxConcurrency)
	}
	if s.Rounds == 0 {
		s.Rounds = 1
	}
	if s.Rounds < 1 || s.Rounds > MaxRounds {
		return s, fmt.Errorf("rounds %d out of range 1..%d", s.Rounds, MaxRounds)
	}
	if s.Requests > 0 && s.Requests < int64(s.Rounds) {
		return s, fmt.Errorf("%d requests cannot be split into %d rounds", s.Requests, s.Rounds)
	}
	switch {
	case s.Duration < 0:
		return s, fmt.Errorf("negative duration %v", s.Duration)
	case s.Requests < 0:
		return s, fmt.Errorf("negative request count %d", s.Requests)
	case s.Rate < 0:
		return s, fmt.Errorf("negative rate %v", s.Rate)
	case s.BandwidthKBps < 0:
		return s, fmt.Errorf("negative bandwidth %d KB/s", s.BandwidthKBps)
	case s.ServerDelay < 0:
		return s, fmt.Errorf("negative server delay %v", s.ServerDelay)
	case s.ServerIdleTimeout < 0:
		return s, fmt.Errorf("negative server idle timeout %v", s.ServerIdleTimeout)
	case s.ServerMaxRequests < 0:
		return s, fmt.Errorf("negative server max requests per connection %d", s.ServerMaxRequests)
	case s.Target != "" && (s.ServerIdleTimeout != 0 || s.ServerMaxRequests != 0 || s.ServerDelay != 0):
		return s, errors.New("the server settings (delay, idle timeout, max requests) are for the in-process server; an external one has its own")
	}
	for name, d := range map[string]time.Duration{"rtt": s.RTT, "jitter": s.Jitter} {
		if d < 0 || d%time.Millisecond != 0 {
			return s, fmt.Errorf("%s %v: want whole milliseconds ≥ 0 (the proxy's unit)", name, d)
		}
	}
	if s.Jitter > 0 && s.RTT == 0 {
		return s, errors.New("jitter needs an rtt > 0")
	}
	if s.Body == nil {
		s.Body = DefaultBody
	}
	if !json.Valid(s.Body) {
		return s, errors.New("request body is not valid JSON")
	}
	if err := s.normalizeTarget(); err != nil {
		return s, err
	}
	if err := s.normalizeToken(); err != nil {
		return s, err
	}
	if err := checkNames("mode", s.Modes, AllModes); err != nil {
		return s, err
	}
	if len(s.Modes) == 0 {
		s.Modes = AllModes
	}
	// Run order is AllModes order.
	s.Modes = slices.DeleteFunc(slices.Clone(AllModes), func(m string) bool { return !slices.Contains(s.Modes, m) })
	return s, nil
}

func (s *Settings) normalizeTarget() error {
	if err := checkNames("proto", s.Protos, AllProtos); err != nil {
		return err
	}
	if s.Target == "" {
		if len(s.Protos) == 0 {
			s.Protos = DefaultProtos
		}
		return nil
	}
	u, err := url.Parse(s.Target)
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	if u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("target %q: want an http:// or https:// URL with a host", s.Target)
	}
	switch {
	case u.Scheme == "https" && len(s.Protos) == 0:
		s.Protos = []string{ProtoTLS}
	case u.Scheme == "http" && len(s.Protos) == 0:
		s.Protos = []string{ProtoHTTP}
	case u.Scheme == "http" && slices.Equal(s.Protos, []string{ProtoH2C}):
	default:
		return fmt.Errorf("proto %v with target %s: the scheme decides; only h2c may be given, for an http:// server that speaks it", s.Protos, u.Scheme)
	}
	return nil
}

func (s *Settings) normalizeToken() error {
	if s.TokenMode == "" {
		s.TokenMode = TokenNone
	}
	switch {
	case !slices.Contains(TokenModes, s.TokenMode):
		return fmt.Errorf("unknown token mode %q (want one of %v)", s.TokenMode, TokenModes)
	case s.TokenMode == TokenNone && s.TokenFetch != 0:
		return errors.New("a token fetch time needs a token mode (per-request or cached)")
	case s.TokenMode == TokenNone:
		return nil
	case s.Target != "":
		return fmt.Errorf("token mode %s needs the in-process server: its tokens come from an in-process issuer that the server trusts", s.TokenMode)
	case s.TokenFetch < 0 || s.TokenFetch > MaxTokenFetch:
		return fmt.Errorf("token fetch time %v out of range 0..%v", s.TokenFetch, MaxTokenFetch)
	case s.TokenFetch == 0:
		s.TokenFetch = DefaultTokenFetch
	}
	return nil
}

// checkNames reports a name not in known or given twice.
func checkNames(what string, names, known []string) error {
	for i, n := range names {
		if !slices.Contains(known, n) {
			return fmt.Errorf("unknown %s %q (want one of %v)", what, n, known)
		}
		if slices.Contains(names[:i], n) {
			return fmt.Errorf("%s %q given twice", what, n)
		}
	}
	return nil
}

// skipReason says why mode has no run over proto, or "" if it has one.
func skipReason(mode, proto string) string {
	if mode == ModeWarmpoolH2 && proto == ProtoHTTP {
		return "HTTP/2 needs TLS or h2c; use -proto tls or -proto h2c"
	}
	if mode == ModeDefaultH1 && proto != ProtoTLS {
		return "default already speaks HTTP/1.1 over cleartext"
	}
	return ""
}

// runCount is the number of runs: modes × protos, less the skipped ones.
func (s Settings) runCount() int {
	n := 0
	for _, p := range s.Protos {
		for _, m := range s.Modes {
			if skipReason(m, p) == "" {
				n++
			}
		}
	}
	return n
}

// withDuration fills in the automatic duration.
func (s Settings) withDuration() Settings {
	if s.Duration == 0 {
		s.Duration = DefaultDuration
		if s.runCount() > AutoDurationRuns {
			s.Duration = ShortDuration
		}
	}
	if s.ProgressEvery == 0 {
		s.ProgressEvery = time.Second
	}
	if s.settleTimeout == 0 {
		s.settleTimeout = 3 * time.Second
	}
	if s.calibrationRequests == 0 {
		s.calibrationRequests = 200
	}
	return s
}

func (s Settings) proxied() bool { return s.RTT > 0 || s.BandwidthKBps > 0 }

// slice is the load of one round of a run: its share of the duration and
// of the request count, with the grace period that bounds it.
func (s Settings) slice(round int) load.Spec {
	d := s.Duration / time.Duration(s.Rounds)
	l := load.Spec{Workers: s.Concurrency, Rate: s.Rate, Duration: d, Grace: stopGrace(d)}
	if s.Requests > 0 {
		r := int64(s.Rounds)
		l.Requests = s.Requests / r
		if int64(round) < s.Requests%r {
			l.Requests++
		}
	}
	return l
}
