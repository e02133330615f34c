package warmpool

import (
	"fmt"
	"strconv"
	"time"
)

// Config tunes a Client. Start from DefaultConfig, or write a literal: a zero
// field then means its default, except where zero is a setting of its own,
// which turns off HTTP/2, retries, or a retry budget limit. Each field's doc
// says which, and gives the default.
//
// LoadConfig reads the same settings from the http_client block of a YAML file
// and from WARMPOOL_<KEY> environment variables, such as
// WARMPOOL_MAX_CONNECTIONS; each field names its key. Durations are seconds
// (30, 0.5) or Go durations ("30s", "200ms"). There, a zero is an error for a
// field whose zero would mean its default, as it would be silently replaced.
type Config struct {
	// MaxKeepaliveConnections is how many idle connections per host stay warm
	// when demand falls. Retention follows demand: connections that recent load
	// used stay open, up to MaxConnections, so a steady load never closes and
	// reopens them; idle ones beyond both recent demand and this number are
	// closed. (warmpool sets http.Transport.MaxIdleConnsPerHost to
	// MaxConnections and trims idle connections itself.) Key
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
	// EnableHTTP2 negotiates HTTP/2 over TLS by ALPN, falling back to HTTP/1.1
	// (http.Transport.Protocols). Key enable_http2. Zero means off; the
	// default, set by DefaultConfig and LoadConfig, is true.
	EnableHTTP2 bool
	// H2C speaks HTTP/2 without TLS, by prior knowledge, to http:// targets
	// (http.Protocols.SetUnencryptedHTTP2). Key h2c. Zero means off.
	H2C bool
	// MaxRetries is how many times a failed attempt may be retried. Key
	// max_retries. Zero means off; the default, set by DefaultConfig and
	// LoadConfig, is 3.
	MaxRetries int
	// RetryBackoffFactor, in seconds, scales the backoff between retries:
	// retry n waits about RetryBackoffFactor × 2^(n−1) s, with jitter, at most
	// RetryMaxBackoff. Key retry_backoff_factor. Zero means the default, 0.5.
	RetryBackoffFactor float64
	// RetryMaxBackoff caps one backoff wait. Key retry_max_backoff. Zero means
	// the default, 10s.
	RetryMaxBackoff time.Duration
	// RetryBudgetPercent, from 0 to 100, caps retries as a share of recent
	// requests, so retries cannot multiply the load on a failing backend. Key
	// retry_budget_percent. Zero means off, leaving RetryBudgetMinPerSecond;
	// the default, set by DefaultConfig and LoadConfig, is 20.
	RetryBudgetPercent float64
	// RetryBudgetMinPerSecond is the rate of retries the budget always allows,
	// so a quiet client can still retry. Key retry_budget_min_per_second. Zero
	// means off; the default, set by DefaultConfig and LoadConfig, is 10.
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

	// Auth selects the bearer token source, from the auth block (a sibling
	// of http_client) and WARMPOOL_AUTH_<KEY> variables; see AuthConfig. New
	// does not act on it: pass the option from Auth.Option to New. Zero means
	// no token, with RefreshBefore and Timeout at their defaults.
	Auth AuthConfig
}

// DefaultConfig returns the defaults with every field filled in: what
// LoadConfig returns for an empty file and environment.
func DefaultConfig() Config { return baseConfig().withDefaults() }

// baseConfig holds the defaults of the fields whose zero is a valid setting;
// withDefaults supplies the others.
func baseConfig() Config {
	return Config{EnableHTTP2: true, MaxRetries: 3, RetryBudgetPercent: 20, RetryBudgetMinPerSecond: 10}
}

// withDefaults replaces the zero of each field where zero is not a valid
// setting with that field's default.
func (c Config) withDefaults() Config {
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

// Validate reports the first setting out of range as a *ConfigError, without
// a Source. A zero that means a default counts as that default.
func (c Config) Validate() error {
	d := c.withDefaults()
	for _, table := range [][]setting{settings, authSettings} {
		for _, f := range table {
			if v, ok := f.check(&d); !ok {
				return &ConfigError{Key: f.fullKey(), Value: f.shown(v), Allowed: f.allowed}
			}
		}
	}
	if d.MaxKeepaliveConnections > d.MaxConnections {
		return &ConfigError{
			Key:     configBlockKey + ".max_keepalive_connections",
			Value:   strconv.Itoa(d.MaxKeepaliveConnections),
			Allowed: fmt.Sprintf("must be ≤ max_connections (%d)", d.MaxConnections),
		}
	}
	return d.Auth.validate()
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
