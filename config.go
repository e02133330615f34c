package warmpool

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
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

// LoadConfig returns the defaults, overridden by the http_client and auth
// blocks of the YAML file at path, overridden in turn by WARMPOOL_*
// environment variables; an empty variable counts as unset. A
// WARMPOOL_AUTH_TYPE that changes auth.type replaces the file's auth block
// as a whole, as its other keys belong to the old type. With path "" only
// the defaults and the environment apply. Other top-level keys of the file
// are ignored, so the blocks can live in a larger application config. The
// result is validated; a bad setting is reported as a *ConfigError naming its
// file and line or its variable.
func LoadConfig(path string) (Config, error) {
	l := newConfigLoader(baseConfig())
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("warmpool: load config: %w", err)
		}
		if err := l.yaml(data, path); err != nil {
			return Config{}, err
		}
	}
	if err := l.env(os.LookupEnv); err != nil {
		return Config{}, err
	}
	return l.result()
}

// ParseConfig is LoadConfig for YAML already in memory, without the
// environment. source names the data in errors, usually its file name.
func ParseConfig(data []byte, source string) (Config, error) {
	l := newConfigLoader(baseConfig())
	if err := l.yaml(data, source); err != nil {
		return Config{}, err
	}
	return l.result()
}

// applyEnv overrides c with the WARMPOOL_* variables that lookup finds.
func applyEnv(c Config, lookup func(string) (string, bool)) (Config, error) {
	l := newConfigLoader(c)
	err := l.env(lookup)
	return l.c, err
}

// configBlockKey is the YAML key of the block that holds the settings.
const configBlockKey = "http_client"

// setting is one key of the http_client or auth block. The file parser, the
// environment parser and Validate share one table of them per block, so
// keys, checks and messages cannot drift apart.
type setting struct {
	key     string                         // YAML key within its block
	allowed string                         // what a valid value looks like, for errors
	parse   func(c *Config, s string) bool // stores s in c; false if s is not allowed
	check   func(c *Config) (string, bool) // formats the value in c; false if Validate rejects it

	block  string                               // "" for http_client, or authBlockKey
	list   func(c *Config, items []string) bool // non-nil: a YAML list is allowed too
	secret bool                                 // the value never appears in errors
}

// fullKey is the YAML path of the setting, such as "http_client.h2c".
func (f *setting) fullKey() string {
	if f.block == "" {
		return configBlockKey + "." + f.key
	}
	return f.block + "." + f.key
}

// envName is the variable that overrides the setting, such as WARMPOOL_H2C
// or WARMPOOL_AUTH_TYPE.
func (f *setting) envName() string {
	if f.block == "" {
		return "WARMPOOL_" + strings.ToUpper(f.key)
	}
	return "WARMPOOL_" + strings.ToUpper(f.block+"_"+f.key)
}

// shown is value as an error may show it: redacted for a secret.
func (f *setting) shown(value string) string {
	if f.secret && value != "" {
		return redactedMark
	}
	return value
}

var settings = []setting{
	intSetting("max_keepalive_connections", 1, func(c *Config) *int { return &c.MaxKeepaliveConnections }),
	intSetting("max_connections", 1, func(c *Config) *int { return &c.MaxConnections }),
	durationSetting("keepalive_expiry", 1, func(c *Config) *time.Duration { return &c.KeepaliveExpiry }),
	durationSetting("connection_timeout", 1, func(c *Config) *time.Duration { return &c.ConnectionTimeout }),
	durationSetting("request_timeout", 1, func(c *Config) *time.Duration { return &c.RequestTimeout }),
	durationSetting("pool_timeout", 1, func(c *Config) *time.Duration { return &c.PoolTimeout }),
	boolSetting("enable_http2", func(c *Config) *bool { return &c.EnableHTTP2 }),
	boolSetting("h2c", func(c *Config) *bool { return &c.H2C }),
	intSetting("max_retries", 0, func(c *Config) *int { return &c.MaxRetries }),
	floatSetting("retry_backoff_factor", "must be a number of seconds > 0",
		func(v float64) bool { return v > 0 }, func(c *Config) *float64 { return &c.RetryBackoffFactor }),
	durationSetting("retry_max_backoff", 1, func(c *Config) *time.Duration { return &c.RetryMaxBackoff }),
	floatSetting("retry_budget_percent", "must be a number from 0 to 100",
		func(v float64) bool { return v >= 0 && v <= 100 }, func(c *Config) *float64 { return &c.RetryBudgetPercent }),
	floatSetting("retry_budget_min_per_second", "must be a number ≥ 0",
		func(v float64) bool { return v >= 0 }, func(c *Config) *float64 { return &c.RetryBudgetMinPerSecond }),
	durationSetting("max_connection_age", 0, func(c *Config) *time.Duration { return &c.MaxConnectionAge }),
	intSetting("max_response_bytes", int64(1), func(c *Config) *int64 { return &c.MaxResponseBytes }),
	durationSetting("stats_log_interval", 0, func(c *Config) *time.Duration { return &c.StatsLogInterval }),
	boolSetting("allow_insecure_token", func(c *Config) *bool { return &c.AllowInsecureToken }),
}

// authSettings are the keys of the auth block. AuthConfig.validate checks
// which keys each type takes.
var authSettings = inBlock(authBlockKey,
	stringSetting("type", func(c *Config) *string { return &c.Auth.Type }),
	stringSetting("audience", func(c *Config) *string { return &c.Auth.Audience }),
	stringSetting("path", func(c *Config) *string { return &c.Auth.Path }),
	stringSetting("env", func(c *Config) *string { return &c.Auth.Env }),
	listSetting("command", func(c *Config) *[]string { return &c.Auth.Command }),
	secretSetting(stringSetting("token", func(c *Config) *string { return &c.Auth.Token })),
	durationSetting("refresh_before", 1, func(c *Config) *time.Duration { return &c.Auth.RefreshBefore }),
	durationSetting("timeout", 1, func(c *Config) *time.Duration { return &c.Auth.Timeout }),
)

// inBlock puts settings in the named block.
func inBlock(block string, table ...setting) []setting {
	for i := range table {
		table[i].block = block
	}
	return table
}

func secretSetting(f setting) setting { f.secret = true; return f }

// stringSetting is a string, taken as written. The empty string, which means
// unset, cannot be written.
func stringSetting(key string, p func(*Config) *string) setting {
	return setting{
		key:     key,
		allowed: "must be a non-empty string",
		parse: func(c *Config, s string) bool {
			*p(c) = s
			return s != ""
		},
		check: func(c *Config) (string, bool) { return *p(c), true },
	}
}

// listSetting is a list of strings: a YAML list, or a string split on spaces.
func listSetting(key string, p func(*Config) *[]string) setting {
	const allowed = "must be a list of strings, or a string split on spaces, with a non-empty first item"
	ok := func(items []string) bool { return len(items) > 0 && items[0] != "" }
	return setting{
		key:     key,
		allowed: allowed,
		parse: func(c *Config, s string) bool {
			items := strings.Fields(s)
			if !ok(items) {
				return false
			}
			*p(c) = items
			return true
		},
		list: func(c *Config, items []string) bool {
			if !ok(items) {
				return false
			}
			*p(c) = items
			return true
		},
		check: func(c *Config) (string, bool) { return strings.Join(*p(c), " "), true },
	}
}

// newSetting makes a setting of type T, valid where ok holds.
func newSetting[T any](key, allowed string, parse func(string) (T, error), ok func(T) bool, p func(*Config) *T) setting {
	return setting{
		key:     key,
		allowed: allowed,
		parse: func(c *Config, s string) bool {
			v, err := parse(s)
			if err != nil || !ok(v) {
				return false
			}
			*p(c) = v
			return true
		},
		check: func(c *Config) (string, bool) { return fmt.Sprint(*p(c)), ok(*p(c)) },
	}
}

func intSetting[T int | int64](key string, min T, p func(*Config) *T) setting {
	parse := func(s string) (T, error) {
		n, err := strconv.ParseInt(s, 10, 64)
		if int64(T(n)) != n {
			err = strconv.ErrRange
		}
		return T(n), err
	}
	return newSetting(key, fmt.Sprintf("must be an integer ≥ %d", min), parse, func(v T) bool { return v >= min }, p)
}

func durationSetting(key string, min time.Duration, p func(*Config) *time.Duration) setting {
	op := "≥"
	if min > 0 {
		op = ">"
	}
	allowed := "must be a duration " + op + ` 0 (seconds such as 30 or 0.5, or a Go duration such as "30s")`
	return newSetting(key, allowed, parseConfigDuration, func(d time.Duration) bool { return d >= min }, p)
}

// floatSetting is a finite number for which ok holds.
func floatSetting(key, allowed string, ok func(float64) bool, p func(*Config) *float64) setting {
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) && ok(v) }
	return newSetting(key, allowed, func(s string) (float64, error) { return strconv.ParseFloat(s, 64) }, finite, p)
}

func boolSetting(key string, p func(*Config) *bool) setting {
	return newSetting(key, "must be true or false", strconv.ParseBool, func(bool) bool { return true }, p)
}

var errConfigDuration = errors.New("not a duration ≥ 0")

// parseConfigDuration reads seconds as a decimal number ("30", "0.2") or a Go
// duration ("30s", "200ms"). It rejects negative, infinite, NaN and
// overflowing values.
func parseConfigDuration(s string) (time.Duration, error) {
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		ns := math.Round(secs * float64(time.Second))
		if math.IsNaN(secs) || secs < 0 || ns >= math.MaxInt64 {
			return 0, errConfigDuration
		}
		return time.Duration(ns), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, errConfigDuration
	}
	return d, nil
}

// configLoader builds a Config from layers and remembers where each key was set, so
// that an error Validate finds in the result can still name its source.
type configLoader struct {
	c      Config
	origin map[string]string // key → source
}

func newConfigLoader(c Config) *configLoader { return &configLoader{c: c, origin: map[string]string{}} }

func (l *configLoader) set(f *setting, value, source string) error {
	if !f.parse(&l.c, value) {
		return &ConfigError{Key: f.fullKey(), Value: f.shown(value), Allowed: f.allowed, Source: source}
	}
	l.origin[f.fullKey()] = source
	return nil
}

func (l *configLoader) env(lookup func(string) (string, bool)) error {
	if v, ok := lookup("WARMPOOL_AUTH_TYPE"); ok && v != "" && v != l.c.Auth.Type {
		// The file's other auth keys belong to its type: drop them.
		l.c.Auth = AuthConfig{}
		for key := range l.origin {
			if strings.HasPrefix(key, authBlockKey+".") {
				delete(l.origin, key)
			}
		}
	}
	for _, table := range [][]setting{settings, authSettings} {
		for i := range table {
			name := table[i].envName()
			if v, ok := lookup(name); ok && v != "" {
				if err := l.set(&table[i], v, "env "+name); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// yaml applies the http_client block of data; name is the file name for errors.
func (l *configLoader) yaml(data []byte, name string) error {
	at := func(n *yaml.Node) string {
		if name == "" {
			return fmt.Sprintf("line %d", n.Line)
		}
		return fmt.Sprintf("%s:%d", name, n.Line)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return &ConfigError{Source: name, Allowed: "not valid YAML: " + err.Error()}
	}
	if len(doc.Content) == 0 || yamlIsNull(yamlDeref(doc.Content[0])) {
		return nil // empty, or only comments
	}
	root := yamlDeref(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		return &ConfigError{Source: at(doc.Content[0]), Allowed: "the top level must be a mapping"}
	}
	if err := l.yamlBlock(root, configBlockKey, settings, at); err != nil {
		return err
	}
	return l.yamlBlock(root, authBlockKey, authSettings, at)
}

// yamlBlock applies the block name of the top-level mapping root, whose keys
// are those of table.
func (l *configLoader) yamlBlock(root *yaml.Node, name string, table []setting, at func(*yaml.Node) string) error {
	var blockAt, block *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if k := yamlDeref(root.Content[i]); k.Kind == yaml.ScalarNode && k.Value == name {
			if blockAt != nil {
				return &ConfigError{Key: name, Source: at(root.Content[i]), Allowed: fmt.Sprintf("duplicate key, first set on line %d", blockAt.Line)}
			}
			blockAt, block = root.Content[i], root.Content[i+1]
		}
	}
	if block == nil || yamlIsNull(yamlDeref(block)) {
		return nil
	}
	if yamlDeref(block).Kind != yaml.MappingNode {
		return &ConfigError{Key: name, Value: yamlDeref(block).Value, Source: at(block), Allowed: "must be a mapping of settings"}
	}
	seen := map[string]int{}
	content := yamlDeref(block).Content
	for i := 0; i+1 < len(content); i += 2 {
		k, v := yamlDeref(content[i]), yamlDeref(content[i+1])
		f := settingByKey(table, k.Value)
		key := name + "." + k.Value
		switch {
		case k.Kind != yaml.ScalarNode || f == nil:
			return &ConfigError{Key: key, Source: at(content[i]), Allowed: unknownConfigKey(table, k.Value)}
		case seen[k.Value] != 0:
			return &ConfigError{Key: key, Source: at(content[i]), Allowed: fmt.Sprintf("duplicate key, first set on line %d", seen[k.Value])}
		case v.Kind == yaml.SequenceNode && f.list != nil:
			seen[k.Value] = content[i].Line
			if err := l.setList(f, v, at); err != nil {
				return err
			}
			continue
		case v.Kind != yaml.ScalarNode:
			return &ConfigError{Key: key, Source: at(content[i+1]), Allowed: f.allowed}
		}
		seen[k.Value] = content[i].Line
		value := v.Value
		if f.block != "" && yamlIsNull(v) {
			value = "" // "~" or "null" is not a path or a token
		}
		if err := l.set(f, value, at(content[i+1])); err != nil {
			return err
		}
	}
	return nil
}

// setList applies a YAML list of scalars to a setting that takes one.
func (l *configLoader) setList(f *setting, seq *yaml.Node, at func(*yaml.Node) string) error {
	items := make([]string, 0, len(seq.Content))
	for _, n := range seq.Content {
		if n = yamlDeref(n); n.Kind != yaml.ScalarNode || yamlIsNull(n) {
			return &ConfigError{Key: f.fullKey(), Source: at(n), Allowed: f.allowed}
		}
		items = append(items, n.Value)
	}
	if !f.list(&l.c, items) {
		return &ConfigError{Key: f.fullKey(), Source: at(seq), Allowed: f.allowed}
	}
	l.origin[f.fullKey()] = at(seq)
	return nil
}

// result fills in defaults and validates, naming the source of a bad key.
func (l *configLoader) result() (Config, error) {
	c := l.c.withDefaults()
	if err := c.Validate(); err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) && ce.Source == "" {
			ce.Source = l.origin[ce.Key]
			if ce.Source == "" && strings.HasPrefix(ce.Key, authBlockKey+".") {
				ce.Source = l.origin[authBlockKey+".type"] // a key the type requires is missing
			}
		}
		return Config{}, err
	}
	return c, nil
}

// yamlDeref follows YAML aliases to the node they name.
func yamlDeref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func yamlIsNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

func settingByKey(table []setting, key string) *setting {
	for i := range table {
		if table[i].key == key {
			return &table[i]
		}
	}
	return nil
}

// unknownConfigKey describes a key not in table, suggesting the closest known
// one when it is near enough to be a likely typo.
func unknownConfigKey(table []setting, key string) string {
	best, bestDist := "", len(key)/3+1
	for _, f := range table {
		if d := editDistance(strings.ToLower(key), f.key); d < bestDist {
			best, bestDist = f.key, d
		}
	}
	if best == "" {
		return "unknown key"
	}
	return "unknown key, did you mean " + best + "?"
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
