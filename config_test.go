package warmpool

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// writeConfigFile writes content to a file in a fresh temporary directory and
// returns its path.
func writeConfigFile(t testing.TB, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// asConfigError asserts that err is a one-line *ConfigError and returns it.
func asConfigError(t testing.TB, err error) *ConfigError {
	t.Helper()
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("got error %v (%T), want a *ConfigError", err, err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "warmpool: ") || strings.Contains(msg, "\n") {
		t.Errorf("got message %q, want one line starting with \"warmpool: \"", msg)
	}
	return ce
}

func TestDefaultConfig(t *testing.T) {
	want := Config{
		MaxKeepaliveConnections: 20,
		MaxConnections:          100,
		KeepaliveExpiry:         30 * time.Second,
		ConnectionTimeout:       10 * time.Second,
		RequestTimeout:          30 * time.Second,
		PoolTimeout:             5 * time.Second,
		MaxRetries:              3,
		RetryBackoffFactor:      0.5,
		RetryMaxBackoff:         10 * time.Second,
		RetryBudgetPercent:      20,
		RetryBudgetMinPerSecond: 10,
		MaxResponseBytes:        10485760,
		ResolveInterval:         30 * time.Second,
		Balancer:                "p2c",
		EjectAfterFailures:      5,
		EjectDuration:           30 * time.Second,
		MaxEjectedPercent:       50,
		ConcurrencyLimit:        "off",
		CircuitBreakerOpenFor:   5 * time.Second,
		HedgeMaxExtraPercent:    5,
		Auth:                    AuthConfig{RefreshBefore: 5 * time.Minute, Timeout: 10 * time.Second},
	}
	if got := DefaultConfig(); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v, want nil", err)
	}
}

func TestConfigErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		err  *ConfigError
		want string
	}{
		{
			"file",
			&ConfigError{Key: "http_client.max_connections", Value: "-1", Allowed: "must be an integer ≥ 1", Source: "config.yaml:3"},
			`warmpool: config.yaml:3: http_client.max_connections = "-1": must be an integer ≥ 1`,
		},
		{
			"env",
			&ConfigError{Key: "http_client.h2c", Value: "maybe", Allowed: "must be true or false", Source: "env WARMPOOL_H2C"},
			`warmpool: env WARMPOOL_H2C: http_client.h2c = "maybe": must be true or false`,
		},
		{
			"go value",
			&ConfigError{Key: "http_client.pool_timeout", Value: "-1s", Allowed: "must be a duration > 0"},
			`warmpool: http_client.pool_timeout = "-1s": must be a duration > 0`,
		},
		{
			"no value",
			&ConfigError{Key: "http_client.maxconn", Allowed: "unknown key", Source: "a.yaml:2"},
			`warmpool: a.yaml:2: http_client.maxconn: unknown key`,
		},
		{
			"newline in value stays on one line",
			&ConfigError{Key: "http_client.max_retries", Value: "1\n2", Allowed: "must be an integer ≥ 0"},
			`warmpool: http_client.max_retries = "1\n2": must be an integer ≥ 0`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}

	// The example message of the design, end to end.
	yaml := "app: demo\nhttp_client:\n  max_connections: -1\n"
	_, err := ParseConfig([]byte(yaml), "config.yaml")
	want := `warmpool: config.yaml:3: http_client.max_connections = "-1": must be an integer ≥ 1`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		key     string // "" for valid
		message string
	}{
		{"zero value", Config{}, "", ""},
		{"defaults", DefaultConfig(), "", ""},
		{"small pool takes a smaller keepalive default", Config{MaxConnections: 5}, "", ""},
		{"keepalive equal to max", Config{MaxConnections: 5, MaxKeepaliveConnections: 5}, "", ""},
		{"budget bounds", Config{RetryBudgetPercent: 100, RetryBudgetMinPerSecond: 0}, "", ""},
		{"keepalive above max", Config{MaxConnections: 5, MaxKeepaliveConnections: 6}, "http_client.max_keepalive_connections", `= "6": must be ≤ max_connections (5)`},
		{"keepalive above default max", Config{MaxKeepaliveConnections: 150}, "http_client.max_keepalive_connections", `= "150": must be ≤ max_connections (100)`},
		{"negative keepalive", Config{MaxKeepaliveConnections: -1}, "http_client.max_keepalive_connections", `"-1"`},
		{"negative max_connections", Config{MaxConnections: -1}, "http_client.max_connections", `"-1"`},
		{"negative keepalive_expiry", Config{KeepaliveExpiry: -time.Second}, "http_client.keepalive_expiry", `"-1s"`},
		{"negative connection_timeout", Config{ConnectionTimeout: -1}, "http_client.connection_timeout", `"-1ns"`},
		{"negative request_timeout", Config{RequestTimeout: -1}, "http_client.request_timeout", "must be a duration"},
		{"negative pool_timeout", Config{PoolTimeout: -1}, "http_client.pool_timeout", "must be a duration"},
		{"negative retry_max_backoff", Config{RetryMaxBackoff: -1}, "http_client.retry_max_backoff", "must be a duration"},
		{"negative max_connection_age", Config{MaxConnectionAge: -1}, "http_client.max_connection_age", "must be a duration ≥ 0"},
		{"unknown balancer", Config{Balancer: "random"}, "http_client.balancer", "must be one of p2c, round_robin, first"},
		{"max_ejected_percent over 100", Config{MaxEjectedPercent: 101}, "http_client.max_ejected_percent", "must be a number from 0 to 100"},
		{"negative stats_log_interval", Config{StatsLogInterval: -1}, "http_client.stats_log_interval", "must be a duration ≥ 0"},
		{"negative backoff factor", Config{RetryBackoffFactor: -0.5}, "http_client.retry_backoff_factor", `"-0.5"`},
		{"NaN backoff factor", Config{RetryBackoffFactor: math.NaN()}, "http_client.retry_backoff_factor", `"NaN"`},
		{"infinite backoff factor", Config{RetryBackoffFactor: math.Inf(1)}, "http_client.retry_backoff_factor", `"+Inf"`},
		{"budget above 100", Config{RetryBudgetPercent: 100.5}, "http_client.retry_budget_percent", "from 0 to 100"},
		{"NaN budget", Config{RetryBudgetPercent: math.NaN()}, "http_client.retry_budget_percent", "from 0 to 100"},
		{"infinite budget floor", Config{RetryBudgetMinPerSecond: math.Inf(1)}, "http_client.retry_budget_min_per_second", "must be a number ≥ 0"},
		{"negative max_response_bytes", Config{MaxResponseBytes: -1}, "http_client.max_response_bytes", `"-1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.key == "" {
				if err != nil {
					t.Errorf("got %v, want nil", err)
				}
				return
			}
			ce := asConfigError(t, err)
			if ce.Key != tt.key || ce.Source != "" {
				t.Errorf("got Key %q, Source %q, want %q, \"\"", ce.Key, ce.Source, tt.key)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("got %q, want it to contain %q", err, tt.message)
			}
		})
	}
}

func TestWithDefaults(t *testing.T) {
	if got, want := (Config{}).WithDefaults(), DefaultConfig(); !reflect.DeepEqual(got, want) {
		t.Errorf("Config{}: got %+v, want DefaultConfig() %+v", got, want)
	}

	set := Config{
		MaxKeepaliveConnections: 1, MaxConnections: 2, KeepaliveExpiry: 3, ConnectionTimeout: 4, RequestTimeout: 5,
		PoolTimeout: 6, DisableHTTP2: true, H2C: true, MaxRetries: 7, RetryBackoffFactor: 8, RetryMaxBackoff: 9,
		RetryBudgetPercent: 10, RetryBudgetMinPerSecond: 11, MaxConnectionAge: 12, MaxResponseBytes: 13,
		StatsLogInterval: 14, AllowInsecureToken: true, DisableIdleLearning: true, ResolveInterval: 17, Balancer: "first", SlowStart: 18,
		EjectAfterFailures: 19, EjectDuration: 20, MaxEjectedPercent: 21, ConcurrencyLimit: "adaptive", LimitQueueTimeout: 22,
		CircuitBreakerFailures: 23, CircuitBreakerOpenFor: 24, HedgeAfter: "p95", HedgeMaxExtraPercent: 25,
		Auth: AuthConfig{RefreshBefore: 15, Timeout: 16},
	}
	if got := set.WithDefaults(); !reflect.DeepEqual(got, set) {
		t.Errorf("all set: got %+v, want it unchanged", got)
	}

	if got := (Config{MaxConnections: 8}).WithDefaults().MaxKeepaliveConnections; got != 8 {
		t.Errorf("MaxConnections 8: got MaxKeepaliveConnections %d, want 8", got)
	}
	if got := (Config{MaxConnections: 50}).WithDefaults().MaxKeepaliveConnections; got != 20 {
		t.Errorf("MaxConnections 50: got MaxKeepaliveConnections %d, want 20", got)
	}
}

// TestZeroIsDefaultEverywhere checks the rule of Config: a zero field means
// its default however the Config was made (a literal, JSON, DefaultConfig, a
// file), and each feature that is on by default turns off explicitly: from
// Go (Disable… or a negative), from YAML and from the environment (false or
// 0), all to the same effective settings.
func TestZeroIsDefaultEverywhere(t *testing.T) {
	fromJSON := func(js string) Config {
		t.Helper()
		var c Config
		if err := json.Unmarshal([]byte(js), &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	fromFile := func(yaml string) Config {
		t.Helper()
		c, err := ParseConfig([]byte(yaml), "c.yaml")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	fromEnv := func(k, v string) Config {
		t.Helper()
		l := newConfigLoader(Config{})
		l.env(map[string]string{k: v})
		c, err := l.result()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	def := DefaultConfig()
	for name, c := range map[string]Config{
		"literal":         {},
		"JSON":            fromJSON(`{"MaxConnections": 0, "MaxRetries": 0, "RetryBudgetPercent": 0}`),
		"DefaultConfig":   DefaultConfig(),
		"DefaultConfig 0": func() Config { c := DefaultConfig(); c.MaxRetries, c.ResolveInterval = 0, 0; return c }(),
		"empty file":      fromFile("http_client:\n"),
	} {
		if got := c.WithDefaults(); !reflect.DeepEqual(got, def) {
			t.Errorf("%s: effective %+v, want DefaultConfig %+v", name, got, def)
		}
	}

	off := []struct {
		key, env string
		goOff    func(*Config)
		isOff    func(Config) bool
	}{
		{"enable_http2: false", "false", func(c *Config) { c.DisableHTTP2 = true }, func(c Config) bool { return c.DisableHTTP2 }},
		{"learn_idle_timeout: false", "false", func(c *Config) { c.DisableIdleLearning = true }, func(c Config) bool { return c.DisableIdleLearning }},
		{"max_retries: 0", "0", func(c *Config) { c.MaxRetries = -1 }, func(c Config) bool { return c.MaxRetries < 0 }},
		{"retry_budget_percent: 0", "0", func(c *Config) { c.RetryBudgetPercent = -1 }, func(c Config) bool { return c.RetryBudgetPercent < 0 }},
		{"retry_budget_min_per_second: 0", "0", func(c *Config) { c.RetryBudgetMinPerSecond = -1 }, func(c Config) bool { return c.RetryBudgetMinPerSecond < 0 }},
		{"resolve_interval: 0", "0", func(c *Config) { c.ResolveInterval = -1 }, func(c Config) bool { return c.ResolveInterval < 0 }},
		{"max_ejected_percent: 0", "0", func(c *Config) { c.MaxEjectedPercent = -1 }, func(c Config) bool { return c.MaxEjectedPercent < 0 }},
	}
	for _, tt := range off {
		t.Run(tt.key, func(t *testing.T) {
			var goCfg Config
			tt.goOff(&goCfg)
			key, _, _ := strings.Cut(tt.key, ":")
			for name, c := range map[string]Config{
				"Go":   goCfg.WithDefaults(),
				"YAML": fromFile("http_client:\n  " + tt.key + "\n"),
				"env":  fromEnv("WARMPOOL_"+strings.ToUpper(key), tt.env),
			} {
				if !tt.isOff(c) {
					t.Errorf("%s: not off in %+v", name, c)
				}
				if err := c.Validate(); err != nil {
					t.Errorf("%s: Validate: %v", name, err)
				}
				if got := c.Settings()[key]; got != strings.TrimSpace(strings.SplitN(tt.key, ":", 2)[1]) {
					t.Errorf("%s: Settings()[%s] = %q, want the YAML meaning", name, key, got)
				}
			}
		})
	}
	// And off means off where it acts: no retry, no HTTP/2 offered.
	c, err := New(Config{MaxRetries: -1, DisableHTTP2: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.tr.Protocols.HTTP2() || newRetrier(c, httptest.NewRequest("GET", "/", nil)).canRetry {
		t.Errorf("DisableHTTP2 and MaxRetries -1: HTTP/2 %v, retries %v; want both off", c.tr.Protocols.HTTP2(), true)
	}
}

// TestSettingsTable checks that the key table maps each key to its own Config
// field and covers every field, so a new field cannot be forgotten.
func TestSettingsTable(t *testing.T) {
	owner := map[string]string{} // Config field name → key
	for _, f := range settings {
		var c Config
		if !f.parse(&c, "7") && !f.parse(&c, "true") && !f.parse(&c, "X-Test: 7") && !f.parse(&c, "round_robin") ||
			reflect.ValueOf(c).IsZero() && !f.parse(&c, "false") {
			t.Fatalf("%s: accepts none of 7, true, false, X-Test: 7 and round_robin", f.key)
		}
		v := reflect.ValueOf(c)
		var changed []string
		for i := range v.NumField() {
			if !v.Field(i).IsZero() {
				changed = append(changed, v.Type().Field(i).Name)
			}
		}
		if len(changed) != 1 {
			t.Fatalf("%s: set fields %v, want exactly one", f.key, changed)
		}
		if prev, ok := owner[changed[0]]; ok {
			t.Errorf("%s and %s both set %s", prev, f.key, changed[0])
		}
		owner[changed[0]] = f.key
		// The keys of features that are on by default name the feature,
		// the fields its off switch.
		inverted := map[string]string{"enable_http2": "DisableHTTP2", "learn_idle_timeout": "DisableIdleLearning"}
		if want := strings.ReplaceAll(strings.ToLower(changed[0]), "_", ""); strings.ReplaceAll(f.key, "_", "") != want && inverted[f.key] != changed[0] {
			t.Errorf("key %s sets field %s", f.key, changed[0])
		}
	}
	if n := reflect.TypeFor[Config]().NumField() - 1; len(owner) != n { // all but Auth
		t.Errorf("got %d fields in the key table, want all %d of Config but Auth", len(owner), n)
	}
}

func TestUnknownKey(t *testing.T) {
	tests := map[string]string{
		"max_connection":   "unknown key, did you mean max_connections?",
		"maxconnections":   "unknown key, did you mean max_connections?",
		"Enable_HTTP2":     "unknown key, did you mean enable_http2?",
		"keepalive_expiri": "unknown key, did you mean keepalive_expiry?",
		"retry_budget_pct": "unknown key, did you mean retry_budget_percent?",
		"timeout":          "unknown key",
		"http2":            "unknown key",
		"":                 "unknown key",
	}
	for key, want := range tests {
		t.Run(key, func(t *testing.T) {
			if got := unknownConfigKey(settings, key); got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

// TestSettingsRoundTrip writes Config.Settings as an http_client block and
// reads it back: every key is one the loader knows, and every value comes
// back as it was.
func TestSettingsRoundTrip(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxConnections, cfg.MaxKeepaliveConnections, cfg.KeepaliveExpiry, cfg.H2C, cfg.RetryBackoffFactor = 7, 5, 1500*time.Millisecond, true, 0.25
	cfg.MaxConnectionAge, cfg.MaxResponseBytes, cfg.DisableIdleLearning, cfg.MaxRetries = time.Minute, 12345, true, -1
	var y strings.Builder
	y.WriteString("http_client:\n")
	for _, k := range slices.Sorted(maps.Keys(cfg.Settings())) {
		if v := cfg.Settings()[k]; v != "" {
			fmt.Fprintf(&y, "  %s: %q\n", k, v)
		}
	}
	back, err := ParseConfig([]byte(y.String()), "settings.yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, y.String())
	}
	if !reflect.DeepEqual(back, cfg) {
		t.Errorf("round trip: got %+v, want %+v", back, cfg)
	}
	h := DefaultConfig()
	h.Headers = map[string]string{"X-Api-Key": "secret"}
	if got := h.Settings()["headers"]; got != "X-Api-Key: "+redactedMark {
		t.Errorf("headers shown as %q, want the name with the value redacted", got)
	}
}
