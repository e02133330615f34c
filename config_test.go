package warmpool

import (
	"errors"
	"fmt"
	"maps"
	"math"
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
		EnableHTTP2:             true,
		MaxRetries:              3,
		RetryBackoffFactor:      0.5,
		RetryMaxBackoff:         10 * time.Second,
		RetryBudgetPercent:      20,
		RetryBudgetMinPerSecond: 10,
		MaxResponseBytes:        10485760,
		LearnIdleTimeout:        true,
		ResolveInterval:         30 * time.Second,
		Balancer:                "p2c",
		EjectAfterFailures:      5,
		EjectDuration:           30 * time.Second,
		MaxEjectedPercent:       50,
		Auth:                    AuthConfig{RefreshBefore: 5 * time.Minute, Timeout: 10 * time.Second},
		filled:                  true,
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
		{"negative retries", Config{MaxRetries: -1}, "http_client.max_retries", "must be an integer ≥ 0"},
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
		{"negative budget", Config{RetryBudgetPercent: -1}, "http_client.retry_budget_percent", "from 0 to 100"},
		{"NaN budget", Config{RetryBudgetPercent: math.NaN()}, "http_client.retry_budget_percent", "from 0 to 100"},
		{"negative budget floor", Config{RetryBudgetMinPerSecond: -1}, "http_client.retry_budget_min_per_second", "must be a number ≥ 0"},
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
	if got, want := (Config{}).withDefaults(), DefaultConfig(); !reflect.DeepEqual(got, want) {
		t.Errorf("Config{}: got %+v, want DefaultConfig() %+v", got, want)
	}

	set := Config{
		MaxKeepaliveConnections: 1, MaxConnections: 2, KeepaliveExpiry: 3, ConnectionTimeout: 4, RequestTimeout: 5,
		PoolTimeout: 6, EnableHTTP2: true, H2C: true, MaxRetries: 7, RetryBackoffFactor: 8, RetryMaxBackoff: 9,
		RetryBudgetPercent: 10, RetryBudgetMinPerSecond: 11, MaxConnectionAge: 12, MaxResponseBytes: 13,
		StatsLogInterval: 14, AllowInsecureToken: true, LearnIdleTimeout: true, ResolveInterval: 17, Balancer: "first", SlowStart: 18,
		EjectAfterFailures: 19, EjectDuration: 20, MaxEjectedPercent: 21, Auth: AuthConfig{RefreshBefore: 15, Timeout: 16},
	}
	want := set
	want.filled = true
	if got := set.withDefaults(); !reflect.DeepEqual(got, want) {
		t.Errorf("all set: got %+v, want it unchanged but filled", got)
	}
	if got := want.withDefaults(); !reflect.DeepEqual(got, want) {
		t.Errorf("filled twice: got %+v, want %+v", got, want)
	}

	if got := (Config{MaxConnections: 8}).withDefaults().MaxKeepaliveConnections; got != 8 {
		t.Errorf("MaxConnections 8: got MaxKeepaliveConnections %d, want 8", got)
	}
	if got := (Config{MaxConnections: 50}).withDefaults().MaxKeepaliveConnections; got != 20 {
		t.Errorf("MaxConnections 50: got MaxKeepaliveConnections %d, want 20", got)
	}
}

// TestZeroIsDefaultInLiteral checks the fields whose zero is also a setting:
// left out of a literal they take their defaults; set to zero in a Config
// that came from DefaultConfig or a file, they stay off.
func TestZeroIsDefaultInLiteral(t *testing.T) {
	type knobs struct {
		http2         bool
		retries       int
		budgetPercent float64
		budgetMin     float64
	}
	on := knobs{true, 3, 20, 10}
	fromFile := func(yaml string) Config {
		t.Helper()
		c, err := ParseConfig([]byte(yaml), "c.yaml")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	fromDefaults := func(edit func(*Config)) Config { c := DefaultConfig(); edit(&c); return c }
	tests := []struct {
		name string
		cfg  Config
		want knobs
	}{
		{"empty literal", Config{}, on},
		{"literal with MaxConnections", Config{MaxConnections: 50}, on},
		{"literal with every knob set", Config{EnableHTTP2: true, MaxRetries: 5, RetryBudgetPercent: 50, RetryBudgetMinPerSecond: 1},
			knobs{true, 5, 50, 1}},
		{"literal with zero knobs", Config{EnableHTTP2: false, MaxRetries: 0, RetryBudgetPercent: 0, RetryBudgetMinPerSecond: 0}, on},
		{"DefaultConfig", DefaultConfig(), on},
		{"DefaultConfig, HTTP/2 off", fromDefaults(func(c *Config) { c.EnableHTTP2 = false }), knobs{false, 3, 20, 10}},
		{"DefaultConfig, retries off", fromDefaults(func(c *Config) { c.MaxRetries = 0 }), knobs{true, 0, 20, 10}},
		{"DefaultConfig, budget percent off", fromDefaults(func(c *Config) { c.RetryBudgetPercent = 0 }), knobs{true, 3, 0, 10}},
		{"DefaultConfig, budget floor off", fromDefaults(func(c *Config) { c.RetryBudgetMinPerSecond = 0 }), knobs{true, 3, 20, 0}},
		{"DefaultConfig copy, all off", func() Config {
			c := DefaultConfig()
			d := c
			d.EnableHTTP2, d.MaxRetries, d.RetryBudgetPercent, d.RetryBudgetMinPerSecond = false, 0, 0, 0
			return d
		}(), knobs{}},
		{"file, nothing set", fromFile("http_client:\n  max_connections: 50\n"), on},
		{"file, all off", fromFile("http_client:\n  enable_http2: false\n  max_retries: 0\n  retry_budget_percent: 0\n  retry_budget_min_per_second: 0\n"), knobs{}},
		{"file, then edited", func() Config { c := fromFile(""); c.MaxRetries = 0; return c }(), knobs{true, 0, 20, 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cfg.withDefaults()
			if got := (knobs{c.EnableHTTP2, c.MaxRetries, c.RetryBudgetPercent, c.RetryBudgetMinPerSecond}); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if again := c.withDefaults(); !reflect.DeepEqual(again, c) {
				t.Errorf("filling again changed %+v to %+v", c, again)
			}
			if err := tt.cfg.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

// TestSettingsTable checks that the key table maps each key to its own Config
// field and covers every field, so a new field cannot be forgotten.
func TestSettingsTable(t *testing.T) {
	owner := map[string]string{} // Config field name → key
	for _, f := range settings {
		var c Config
		if !f.parse(&c, "7") && !f.parse(&c, "true") && !f.parse(&c, "X-Test: 7") && !f.parse(&c, "round_robin") {
			t.Fatalf("%s: accepts none of 7, true, X-Test: 7 and round_robin", f.key)
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
		if want := strings.ReplaceAll(strings.ToLower(changed[0]), "_", ""); strings.ReplaceAll(f.key, "_", "") != want {
			t.Errorf("key %s sets field %s", f.key, changed[0])
		}
	}
	if n := reflect.TypeFor[Config]().NumField() - 2; len(owner) != n { // all but Auth and filled
		t.Errorf("got %d fields in the key table, want all %d of Config but Auth and filled", len(owner), n)
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
	cfg.MaxConnectionAge, cfg.MaxResponseBytes, cfg.LearnIdleTimeout, cfg.MaxRetries = time.Minute, 12345, false, 0
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
