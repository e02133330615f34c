package warmpool

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config tunes a Client.
//
// The rule: a zero field means its default, written in the field's doc,
// however the Config was made (a literal, json.Unmarshal, DefaultConfig,
// LoadConfig), so warmpool.Config{MaxConnections: 50} keeps HTTP/2, retries
// and the retry budget on. A feature that is on by default is turned off
// explicitly, as net.Dialer.KeepAlive is: DisableHTTP2 and
// DisableIdleLearning, or a negative MaxRetries, RetryBudgetPercent,
// RetryBudgetMinPerSecond, ResolveInterval or MaxEjectedPercent.
//
// LoadConfig reads the same settings from the http_client block of a YAML file
// and from WARMPOOL_<KEY> environment variables, such as
// WARMPOOL_MAX_CONNECTIONS; each field names its key. Durations are seconds
// (30, 0.5) or Go durations ("30s", "200ms"). There the keys keep their
// plain meanings: enable_http2: false and learn_idle_timeout: false turn
// those off, and a 0 for max_retries, retry_budget_percent,
// retry_budget_min_per_second, resolve_interval or max_ejected_percent turns
// that feature off (it is stored as -1); a 0 for any other key whose zero
// would mean its default is an error, as it would be silently replaced.
type Config struct {
	// MaxKeepaliveConnections is how many idle connections per host stay warm
	// when demand falls. Retention follows demand: as many connections as
	// requests were in flight at the peak of the last demand window (a tenth
	// of KeepaliveExpiry, at least 1s) stay open, up to MaxConnections, so a
	// steady load never closes and reopens them; idle ones beyond both that
	// and this number are closed. (warmpool sets
	// http.Transport.MaxIdleConnsPerHost to MaxConnections and trims idle
	// connections itself.) Key
	// max_keepalive_connections. Zero means the default, 20, or MaxConnections
	// if that is smaller.
	MaxKeepaliveConnections int
	// MaxConnections caps connections per host, dialing, active and idle alike
	// (http.Transport.MaxConnsPerHost); a request finding all busy waits up to
	// PoolTimeout. Key max_connections. Zero means the default, 100.
	MaxConnections int
	// KeepaliveExpiry is how long an idle connection is kept
	// (http.Transport.IdleConnTimeout). Key keepalive_expiry. Zero means the
	// default, 30s.
	KeepaliveExpiry time.Duration
	// ConnectionTimeout bounds the TCP connect (net.Dialer.Timeout) and the TLS
	// handshake (http.Transport.TLSHandshakeTimeout). Key connection_timeout.
	// Zero means the default, 10s.
	ConnectionTimeout time.Duration
	// RequestTimeout bounds one attempt, headers and body, like
	// http.Client.Timeout but per attempt: each retry starts afresh, and the
	// request's context bounds the whole call. Key request_timeout. Zero means
	// the default, 30s.
	RequestTimeout time.Duration
	// PoolTimeout is how long a request may wait for a free connection when
	// MaxConnections are open to its host, before failing with ErrPoolTimeout;
	// net/http would wait without bound. Key pool_timeout. Zero means the
	// default, 5s.
	PoolTimeout time.Duration
	// DisableHTTP2 turns off HTTP/2 over TLS. By default the client
	// negotiates HTTP/2 by ALPN, falling back to HTTP/1.1
	// (http.Transport.Protocols). Key enable_http2 (true by default; false
	// sets DisableHTTP2).
	DisableHTTP2 bool
	// H2C speaks HTTP/2 without TLS, by prior knowledge, to http:// targets
	// (http.Protocols.SetUnencryptedHTTP2). Key h2c. Zero means off.
	H2C bool
	// MaxRetries is how many times a failed attempt may be retried. Key
	// max_retries. Zero means the default, 3; negative means no retries
	// (max_retries: 0).
	MaxRetries int
	// RetryBackoffFactor, in seconds, scales the backoff between retries:
	// retry n waits about RetryBackoffFactor × 2^(n−1) s, with jitter, at most
	// RetryMaxBackoff. Key retry_backoff_factor. Zero means the default, 0.5.
	RetryBackoffFactor float64
	// RetryMaxBackoff caps one backoff wait. Key retry_max_backoff. Zero means
	// the default, 10s.
	RetryMaxBackoff time.Duration
	// RetryBudgetPercent, up to 100, caps retries as a share of recent
	// requests, so retries cannot multiply the load on a failing backend. Key
	// retry_budget_percent. Zero means the default, 20; negative means none
	// beyond RetryBudgetMinPerSecond (retry_budget_percent: 0).
	RetryBudgetPercent float64
	// RetryBudgetMinPerSecond is the rate of retries the budget always allows,
	// so a quiet client can still retry. Key retry_budget_min_per_second. Zero
	// means the default, 10; negative means none beyond RetryBudgetPercent
	// (retry_budget_min_per_second: 0).
	RetryBudgetMinPerSecond float64
	// MaxConnectionAge retires a connection this old instead of reusing it, so
	// traffic rebalances after DNS or load balancer changes; net/http has no
	// such setting. Key max_connection_age. Zero means off.
	MaxConnectionAge time.Duration
	// MaxResponseBytes caps a response body; a longer one fails with
	// ErrResponseTooLarge. Key max_response_bytes. Zero means the default,
	// 10485760 (10 MiB).
	MaxResponseBytes int64
	// StatsLogInterval logs a Stats snapshot this often to the client's
	// logger. Key stats_log_interval. Zero means off.
	StatsLogInterval time.Duration
	// AllowInsecureToken allows sending a bearer token over plain http to a
	// host that is not loopback, where anyone on the path can read it. Key
	// allow_insecure_token. Zero means off: such a request fails.
	AllowInsecureToken bool
	// DisableIdleLearning turns off learning each server's idle timeout. By
	// default the client learns it, from a "Keep-Alive: timeout=N" answer
	// header or from the idle time of a connection the server closed, and
	// closes idle connections a margin (10 % or 250 ms, whichever is larger)
	// before it, so that no request is sent on a connection as the server
	// closes it. KeepaliveExpiry stays the upper bound. See
	// HostStats.LearnedIdleTimeout. Key learn_idle_timeout (true by default;
	// false sets DisableIdleLearning).
	DisableIdleLearning bool
	// Headers are sent on every request that does not set the header
	// itself, such as {"User-Agent": "my-svc/1.2", "X-Team": "search"}.
	// Names are case-insensitive: LoadConfig stores them canonicalised
	// (http.CanonicalHeaderKey), and two names that differ only in case are
	// an error. Authorization is not allowed (the token comes from Auth or a
	// token source option), nor is Host (net/http takes it from the URL); an
	// invalid name or value is an error. Key headers, a mapping of names to
	// values; WARMPOOL_HEADERS replaces the file's headers as a whole with
	// "Name: value" pairs separated by newlines, or by ";" if there is no
	// newline (so a value holding ";" needs the newline form). Values never
	// appear in errors. Zero means none.
	Headers map[string]string

	// ResolveInterval is how often a host name in a request URL is resolved
	// again to its set of endpoints (every A/AAAA address, same port); it is
	// also resolved at once after a dial failure. A failed resolution keeps
	// the last good set. Key resolve_interval. Zero means the default, 30s;
	// negative means only after a dial failure or when every endpoint is
	// ejected (resolve_interval: 0).
	ResolveInterval time.Duration
	// Balancer picks the endpoint of a host name with several addresses for
	// each attempt: "p2c" (power of two choices on requests in flight, ties
	// broken by latency), "round_robin", or "first" (the first address that
	// is not ejected, as net/http does). Key balancer. Zero means the
	// default, "p2c".
	Balancer string
	// SlowStart ramps a new endpoint's share of requests up from nothing
	// over this long. Key slow_start. Zero means off: a new endpoint takes
	// its share at once.
	SlowStart time.Duration
	// EjectAfterFailures ejects an endpoint after this many consecutive
	// connection failures or 5xx answers. Key eject_after_failures. Zero
	// means the default, 5.
	EjectAfterFailures int
	// EjectDuration is how long an ejected endpoint takes no requests; it
	// doubles each time the endpoint is ejected again within EjectDuration of
	// coming back, up to 32 times. Key eject_duration. Zero means the
	// default, 30s.
	EjectDuration time.Duration
	// MaxEjectedPercent, from 0 to 100, caps the share of a host name's
	// endpoints ejected at once (at least one). Key max_ejected_percent. Zero
	// means the default, 50; negative turns ejection off
	// (max_ejected_percent: 0).
	MaxEjectedPercent float64

	// ConcurrencyLimit caps the requests in flight to each endpoint, so that
	// a backend past its capacity is not sent more than it can serve: "off",
	// a number, or "adaptive", a limit that follows the endpoint's latency
	// (a gradient against its lowest recent latency; see limiter.go and the
	// README's Graceful degradation). A request over the limit waits up to
	// LimitQueueTimeout for another to end, then fails with ErrOverloaded,
	// not sent. With a limit on, client-side throttling is on too (see
	// ErrOverloaded). Key concurrency_limit. Zero means the default, "off".
	ConcurrencyLimit string
	// LimitQueueTimeout is how long a request over ConcurrencyLimit may
	// wait for a slot. Key limit_queue_timeout. Zero means the default: it
	// fails at once.
	LimitQueueTimeout time.Duration
	// CircuitBreakerFailures opens an endpoint's circuit after this many
	// failures in a row that say it is down (refused, connect timeout,
	// request_timeout, a reset, 502, 503, 504): calls to it then fail at once
	// with ErrCircuitOpen, not sent, instead of each waiting out its own
	// request_timeout; after CircuitBreakerOpenFor one call at a time probes
	// it. With the breaker on, client-side throttling is on too. Key
	// circuit_breaker_failures. Zero means the default: off.
	CircuitBreakerFailures int
	// CircuitBreakerOpenFor is how long an open circuit fails calls before
	// a probe may test the endpoint again. Key circuit_breaker_open_for.
	// Zero means the default, 5s.
	CircuitBreakerOpenFor time.Duration
	// HedgeAfter sends an idempotent request (GET, HEAD, PUT, DELETE,
	// OPTIONS, or with an Idempotency-Key) a second time, to another endpoint
	// where the name has several (else on another connection), when the
	// first has not answered after this long, and takes the first answer:
	// a duration such as "20ms", or "p95" (any percentile from "p50" to
	// "p99.9") for that percentile of the host's recent latency. Hedges are
	// limited to HedgeMaxExtraPercent of requests, share the retry budget,
	// and stop while the endpoint is overloaded. Key hedge_after. Zero means
	// the default: off.
	HedgeAfter string
	// HedgeMaxExtraPercent caps hedges at this share of requests, over the
	// last 10 s. Key hedge_max_extra_percent. Zero means the default, 5.
	HedgeMaxExtraPercent float64

	// Auth selects the bearer token source, from the auth block (a sibling
	// of http_client) and WARMPOOL_AUTH_<KEY> variables; see AuthConfig. New
	// uses it (through Auth.Option) when no WithTokenSource or
	// WithTokenSourceFor option is given; such an option takes precedence.
	// Zero means no token, with RefreshBefore and Timeout at their defaults.
	Auth AuthConfig
}

// DefaultConfig returns the defaults with every field filled in: what
// LoadConfig returns for an empty file and environment, and what a literal
// Config{} stands for.
func DefaultConfig() Config { return Config{}.WithDefaults() }

// WithDefaults returns c with each zero field replaced by its default: the
// settings a Client made from c runs with (Client.Config returns the same).
func (c Config) WithDefaults() Config {
	orDefault(&c.MaxRetries, 3)
	orDefault(&c.RetryBudgetPercent, 20)
	orDefault(&c.RetryBudgetMinPerSecond, 10)
	orDefault(&c.ResolveInterval, 30*time.Second)
	orDefault(&c.MaxEjectedPercent, 50)
	orDefault(&c.MaxConnections, 100)
	keep := 20
	if c.MaxConnections > 0 {
		keep = min(keep, c.MaxConnections)
	}
	orDefault(&c.MaxKeepaliveConnections, keep)
	orDefault(&c.KeepaliveExpiry, 30*time.Second)
	orDefault(&c.ConnectionTimeout, 10*time.Second)
	orDefault(&c.RequestTimeout, 30*time.Second)
	orDefault(&c.PoolTimeout, 5*time.Second)
	orDefault(&c.RetryBackoffFactor, 0.5)
	orDefault(&c.RetryMaxBackoff, 10*time.Second)
	orDefault(&c.MaxResponseBytes, 10<<20)
	orDefault(&c.Balancer, balancerP2C)
	orDefault(&c.EjectAfterFailures, 5)
	orDefault(&c.EjectDuration, 30*time.Second)
	orDefault(&c.ConcurrencyLimit, concurrencyOff)
	orDefault(&c.CircuitBreakerOpenFor, 5*time.Second)
	orDefault(&c.HedgeMaxExtraPercent, 5)
	orDefault(&c.Auth.RefreshBefore, defaultRefreshBefore)
	orDefault(&c.Auth.Timeout, defaultAuthTimeout)
	return c
}

// orDefault sets *p to def if *p is zero.
func orDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// Validate reports every setting out of range, each as a *ConfigError
// without a Source. A zero that means a default counts as that default. One
// mistake is returned as it is; several are joined into one error
// (errors.Join), one a line, in which errors.As finds the first.
func (c Config) Validate() error { return joinConfigErrors(c.WithDefaults().problems()) }

// problems lists the settings of c, already filled, that are out of range.
func (c Config) problems() []*ConfigError {
	var errs []*ConfigError
	for _, table := range [][]setting{settings, authSettings} {
		for _, f := range table {
			if v, ok := f.check(&c); !ok {
				errs = append(errs, &ConfigError{Key: f.fullKey(), Value: f.shown(v), Allowed: f.allowed})
			}
		}
	}
	if c.MaxConnections >= 1 && c.MaxKeepaliveConnections > c.MaxConnections { // else max_connections is the mistake
		errs = append(errs, &ConfigError{
			Key:     configBlockKey + ".max_keepalive_connections",
			Value:   strconv.Itoa(c.MaxKeepaliveConnections),
			Allowed: fmt.Sprintf("must be ≤ max_connections (%d)", c.MaxConnections),
		})
	}
	errs = append(errs, headerProblems(c.Headers)...)
	if err := c.Auth.validate(); err != nil {
		ce, ok := errors.AsType[*ConfigError](err)
		if !ok {
			ce = &ConfigError{Key: authBlockKey, Allowed: err.Error()}
		}
		errs = append(errs, ce)
	}
	return errs
}

// ConfigError reports a setting that is unknown, malformed or out of range,
// and where it came from.
type ConfigError struct {
	Key     string // YAML path of the setting, such as "http_client.max_connections"; "" for a malformed file
	Value   string // the value as written, or as formatted from a Go value
	Allowed string // what the value must be, or what is wrong
	Source  string // "config.yaml:7", "env WARMPOOL_MAX_CONNECTIONS", or "" for a Config built in Go
}

// Error formats the error on one line, such as
// `warmpool: config.yaml:3: http_client.max_connections = "-1": must be an integer ≥ 1`.
func (e *ConfigError) Error() string {
	msg := "warmpool: "
	if e.Source != "" {
		msg += e.Source + ": "
	}
	if e.Key != "" && e.Value != "" {
		msg += e.Key + " = " + strconv.Quote(e.Value) + ": "
	} else if e.Key != "" {
		msg += e.Key + ": "
	}
	return msg + e.Allowed
}

// configBlockKey is the YAML key of the block that holds the settings.
const configBlockKey = "http_client"

// joinConfigErrors returns nil for no mistakes, the one mistake as it is, or
// several joined one a line: those of a file by line, then those of the
// environment, then those without a source, each group in the order found.
func joinConfigErrors(errs []*ConfigError) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	order := func(e *ConfigError) int {
		if i := strings.LastIndexAny(e.Source, ": "); i >= 0 {
			if line, err := strconv.Atoi(e.Source[i+1:]); err == nil {
				return line // "config.yaml:7" or "line 7"
			}
		}
		if strings.HasPrefix(e.Source, "env ") {
			return math.MaxInt - 1
		}
		return math.MaxInt
	}
	slices.SortStableFunc(errs, func(a, b *ConfigError) int { return cmp.Compare(order(a), order(b)) })
	list := make([]error, len(errs))
	for i, e := range errs {
		list[i] = e
	}
	return errors.Join(list...)
}
