package warmpool

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// setting is one key of the http_client or auth block. The file parser, the
// environment parser and Validate share one table of them per block, so
// keys, checks and messages cannot drift apart.
type setting struct {
	key     string                         // YAML key within its block
	allowed string                         // what a valid value looks like, for errors
	parse   func(c *Config, s string) bool // stores s in c; false if s is not allowed
	check   func(c *Config) (string, bool) // formats the value in c; false if Validate rejects it

	block   string                               // "" for http_client, or authBlockKey
	list    func(c *Config, items []string) bool // non-nil: a YAML list is allowed too
	secret  bool                                 // the value never appears in errors
	mapping func(c *Config) *map[string]string   // non-nil: the value is a mapping of headers (see config_headers.go)
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
	notSetting("enable_http2", func(c *Config) *bool { return &c.DisableHTTP2 }),
	boolSetting("h2c", func(c *Config) *bool { return &c.H2C }),
	offSetting(intSetting("max_retries", 0, func(c *Config) *int { return &c.MaxRetries }), func(c *Config) *int { return &c.MaxRetries }),
	floatSetting("retry_backoff_factor", "must be a number of seconds > 0",
		func(v float64) bool { return v > 0 }, func(c *Config) *float64 { return &c.RetryBackoffFactor }),
	durationSetting("retry_max_backoff", 1, func(c *Config) *time.Duration { return &c.RetryMaxBackoff }),
	offSetting(floatSetting("retry_budget_percent", "must be a number from 0 to 100",
		func(v float64) bool { return v >= 0 && v <= 100 }, func(c *Config) *float64 { return &c.RetryBudgetPercent }),
		func(c *Config) *float64 { return &c.RetryBudgetPercent }),
	offSetting(floatSetting("retry_budget_min_per_second", "must be a number ≥ 0",
		func(v float64) bool { return v >= 0 }, func(c *Config) *float64 { return &c.RetryBudgetMinPerSecond }),
		func(c *Config) *float64 { return &c.RetryBudgetMinPerSecond }),
	durationSetting("max_connection_age", 0, func(c *Config) *time.Duration { return &c.MaxConnectionAge }),
	intSetting("max_response_bytes", int64(1), func(c *Config) *int64 { return &c.MaxResponseBytes }),
	durationSetting("stats_log_interval", 0, func(c *Config) *time.Duration { return &c.StatsLogInterval }),
	boolSetting("allow_insecure_token", func(c *Config) *bool { return &c.AllowInsecureToken }),
	notSetting("learn_idle_timeout", func(c *Config) *bool { return &c.DisableIdleLearning }),
	headersSetting("headers", func(c *Config) *map[string]string { return &c.Headers }),
	offSetting(durationSetting("resolve_interval", 0, func(c *Config) *time.Duration { return &c.ResolveInterval }),
		func(c *Config) *time.Duration { return &c.ResolveInterval }),
	enumSetting("balancer", balancerNames, func(c *Config) *string { return &c.Balancer }),
	durationSetting("slow_start", 0, func(c *Config) *time.Duration { return &c.SlowStart }),
	intSetting("eject_after_failures", 1, func(c *Config) *int { return &c.EjectAfterFailures }),
	durationSetting("eject_duration", 1, func(c *Config) *time.Duration { return &c.EjectDuration }),
	offSetting(floatSetting("max_ejected_percent", "must be a number from 0 to 100",
		func(v float64) bool { return v >= 0 && v <= 100 }, func(c *Config) *float64 { return &c.MaxEjectedPercent }),
		func(c *Config) *float64 { return &c.MaxEjectedPercent }),
	newSetting("concurrency_limit", `must be "off", "adaptive" or an integer ≥ 1`, func(s string) (string, error) { return s, nil },
		func(v string) bool { _, _, ok := parseConcurrencyLimit(v); return ok }, func(c *Config) *string { return &c.ConcurrencyLimit }),
	durationSetting("limit_queue_timeout", 0, func(c *Config) *time.Duration { return &c.LimitQueueTimeout }),
	intSetting("circuit_breaker_failures", 0, func(c *Config) *int { return &c.CircuitBreakerFailures }),
	durationSetting("circuit_breaker_open_for", 1, func(c *Config) *time.Duration { return &c.CircuitBreakerOpenFor }),
	newSetting("hedge_after", `must be a duration > 0 (seconds such as 0.02, or a Go duration such as "20ms") or a percentile from p50 to p99.9 such as "p95"`,
		parseHedgeAfter, func(v string) bool { _, _, err := hedgeDelay(v); return err == nil }, func(c *Config) *string { return &c.HedgeAfter }),
	floatSetting("hedge_max_extra_percent", "must be a number above 0, at most 100",
		func(v float64) bool { return v > 0 && v <= 100 }, func(c *Config) *float64 { return &c.HedgeMaxExtraPercent }),
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

// enumSetting is one of the strings in values.
func enumSetting(key string, values []string, p func(*Config) *string) setting {
	allowed := "must be one of " + strings.Join(values, ", ")
	return newSetting(key, allowed, func(s string) (string, error) { return s, nil },
		func(v string) bool { return slices.Contains(values, v) }, p)
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

// notSetting is a key whose true is the field's false: enable_http2 for
// DisableHTTP2, so that a zero Config keeps the feature on.
func notSetting(key string, p func(*Config) *bool) setting {
	f := boolSetting(key, p)
	parse := f.parse
	f.parse = func(c *Config, s string) bool {
		if !parse(c, s) {
			return false
		}
		*p(c) = !*p(c)
		return true
	}
	f.check = func(c *Config) (string, bool) { return strconv.FormatBool(!*p(c)), true }
	return f
}

// offSetting is f for a field whose zero means its default and whose
// negative turns the feature off: in YAML and the environment, where 0
// keeps its plain meaning (max_retries: 0), 0 is stored as -1, and a
// negative value is shown as 0.
func offSetting[T int | float64 | time.Duration](f setting, p func(*Config) *T) setting {
	parse, check := f.parse, f.check
	f.parse = func(c *Config, s string) bool {
		if !parse(c, s) {
			return false
		}
		if *p(c) == 0 {
			*p(c) = -1
		}
		return true
	}
	f.check = func(c *Config) (string, bool) {
		if *p(c) < 0 {
			return "0", true
		}
		return check(c)
	}
	return f
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

// Settings returns the http_client block of c, defaults filled in, as its
// YAML keys and their values formatted as the loader reads them (durations
// as Go durations such as "30s"): for reports and debugging, and the one
// mapping of Config fields to keys outside this table. Header values are
// shown as "[redacted]", as they may hold credentials; the auth block, which
// may hold a token, is left out. Feeding the result back through ParseConfig
// gives c again (header values apart).
func (c Config) Settings() map[string]string {
	d := c.WithDefaults()
	out := make(map[string]string, len(settings))
	for _, f := range settings {
		if f.mapping != nil {
			names := make([]string, 0, len(*f.mapping(&d)))
			for k := range *f.mapping(&d) {
				names = append(names, k+": "+redactedMark)
			}
			slices.Sort(names)
			out[f.key] = strings.Join(names, "; ")
			continue
		}
		v, _ := f.check(&d)
		out[f.key] = v
	}
	return out
}
