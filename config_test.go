package warmpool

import (
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// briefYAML is the configuration block of the design brief, verbatim. It must
// load to exactly DefaultConfig().
const briefYAML = `http_client:
  max_keepalive_connections: 20   # idle connections kept per host
  max_connections: 100            # open connections per host (dialing + active + idle), hard cap
  keepalive_expiry: 30.0          # seconds an idle connection is kept
  connection_timeout: 10.0        # TCP connect + TLS handshake
  request_timeout: 30.0           # one whole attempt, headers and body
  pool_timeout: 5.0               # how long a request may wait for a free connection, then ErrPoolTimeout
  enable_http2: true              # negotiate HTTP/2 over TLS (ALPN), falling back to HTTP/1.1
  h2c: false                      # HTTP/2 without TLS, by prior knowledge, for http:// targets
  max_retries: 3
  retry_backoff_factor: 0.5
  max_response_bytes: 10485760
`

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
		Auth:                    AuthConfig{RefreshBefore: 5 * time.Minute, Timeout: 10 * time.Second},
	}
	if got := DefaultConfig(); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v, want nil", err)
	}
}

func TestLoadConfigBriefYAML(t *testing.T) {
	got, err := LoadConfig(writeConfigFile(t, briefYAML))
	if err != nil {
		t.Fatal(err)
	}
	if want := DefaultConfig(); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want func(*Config) // edits DefaultConfig() into the expected result
	}{
		{"empty", "", nil},
		{"only comments", "# nothing here\n", nil},
		{"null document", "~\n", nil},
		{"no http_client block", "app:\n  name: demo\n", nil},
		{"empty http_client block", "http_client:\n", nil},
		{"brief", briefYAML, nil},
		{
			name: "inside a larger file",
			yaml: "db:\n  url: https://backend\n  max_connections: 1\napp:\n  name: demo\nhttp_client:\n  max_connections: 50\n  h2c: true\nlogging: {level: debug}\n",
			want: func(c *Config) { c.MaxConnections, c.H2C = 50, true },
		},
		{
			name: "every key",
			yaml: `http_client:
  max_keepalive_connections: 7
  max_connections: 8
  keepalive_expiry: 1
  connection_timeout: 2s
  request_timeout: 3.5
  pool_timeout: "250ms"
  enable_http2: false
  h2c: true
  max_retries: 0
  retry_backoff_factor: 0.1
  retry_max_backoff: 1m
  retry_budget_percent: 0
  retry_budget_min_per_second: 0
  max_connection_age: 5m
  max_response_bytes: 1024
  stats_log_interval: 15
  allow_insecure_token: true
`,
			want: func(c *Config) {
				*c = Config{
					MaxKeepaliveConnections: 7,
					MaxConnections:          8,
					KeepaliveExpiry:         time.Second,
					ConnectionTimeout:       2 * time.Second,
					RequestTimeout:          3500 * time.Millisecond,
					PoolTimeout:             250 * time.Millisecond,
					H2C:                     true,
					RetryBackoffFactor:      0.1,
					RetryMaxBackoff:         time.Minute,
					MaxConnectionAge:        5 * time.Minute,
					MaxResponseBytes:        1024,
					StatsLogInterval:        15 * time.Second,
					AllowInsecureToken:      true,
					Auth:                    AuthConfig{RefreshBefore: 5 * time.Minute, Timeout: 10 * time.Second},
				}
			},
		},
		{
			name: "keepalive default capped by max_connections",
			yaml: "http_client:\n  max_connections: 5\n",
			want: func(c *Config) { c.MaxConnections, c.MaxKeepaliveConnections = 5, 5 },
		},
		{
			name: "aliases",
			yaml: "shared: &n 42\nhttp_client:\n  max_connections: *n\n  max_keepalive_connections: *n\n",
			want: func(c *Config) { c.MaxConnections, c.MaxKeepaliveConnections = 42, 42 },
		},
		{
			name: "aliased block",
			yaml: "base: &b {max_retries: 1}\nhttp_client: *b\n",
			want: func(c *Config) { c.MaxRetries = 1 },
		},
		{
			name: "quoted numbers",
			yaml: "http_client:\n  max_connections: \"60\"\n  retry_budget_percent: '12.5'\n",
			want: func(c *Config) { c.MaxConnections, c.RetryBudgetPercent = 60, 12.5 },
		},
		{
			name: "flow mapping",
			yaml: "http_client: {max_retries: 5, enable_http2: false}\n",
			want: func(c *Config) { c.MaxRetries, c.EnableHTTP2 = 5, false },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConfig([]byte(tt.yaml), "config.yaml")
			if err != nil {
				t.Fatal(err)
			}
			want := DefaultConfig()
			if tt.want != nil {
				tt.want(&want)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

func TestParseConfigDurationForms(t *testing.T) {
	tests := []struct {
		value string
		want  time.Duration
	}{
		{"30", 30 * time.Second},
		{"30.0", 30 * time.Second},
		{"0.2", 200 * time.Millisecond},
		{"1e-3", time.Millisecond},
		{`"30s"`, 30 * time.Second},
		{"30s", 30 * time.Second},
		{`"200ms"`, 200 * time.Millisecond},
		{"1h30m", 90 * time.Minute},
		{`"45"`, 45 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			c, err := ParseConfig([]byte("http_client:\n  keepalive_expiry: "+tt.value+"\n"), "config.yaml")
			if err != nil {
				t.Fatal(err)
			}
			if c.KeepaliveExpiry != tt.want {
				t.Errorf("got %v, want %v", c.KeepaliveExpiry, tt.want)
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	valid := map[string]time.Duration{
		"0":                        0,
		"0s":                       0,
		"30":                       30 * time.Second,
		"0.2":                      200 * time.Millisecond,
		"1e-9":                     time.Nanosecond,
		"30s":                      30 * time.Second,
		"1.5h":                     90 * time.Minute,
		"9223372036":               9223372036 * time.Second,
		"2562047h47m16.854775807s": math.MaxInt64,
	}
	for s, want := range valid {
		t.Run(s, func(t *testing.T) {
			got, err := parseConfigDuration(s)
			if err != nil || got != want {
				t.Errorf("got %v, %v, want %v, nil", got, err, want)
			}
		})
	}
	for _, s := range []string{"", " 30", "30 s", "-1", "-1s", "-0.5", "NaN", "nan", "Inf", "+Inf", "-Inf", "1e300",
		"9223372037", "9999999999h", "abc", "true", "~", "30sec", ".inf"} {
		t.Run(s, func(t *testing.T) {
			if got, err := parseConfigDuration(s); err == nil {
				t.Errorf("got %v, nil, want an error", got)
			}
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		key     string // want ConfigError.Key
		source  string // want ConfigError.Source
		message string // want in Error()
	}{
		{"negative count", "http_client:\n  max_connections: -1\n", "http_client.max_connections", "c.yaml:2", `= "-1": must be an integer ≥ 1`},
		{"zero max_connections", "http_client:\n  max_connections: 0\n", "http_client.max_connections", "c.yaml:2", "must be an integer ≥ 1"},
		{"fractional count", "http_client:\n  max_connections: 2.5\n", "http_client.max_connections", "c.yaml:2", `"2.5"`},
		{"word for count", "http_client:\n  max_connections: abc\n", "http_client.max_connections", "c.yaml:2", `"abc"`},
		{"bool for count", "http_client:\n  max_retries: true\n", "http_client.max_retries", "c.yaml:2", "must be an integer ≥ 0"},
		{"empty count", "http_client:\n  max_retries:\n", "http_client.max_retries", "c.yaml:2", "must be an integer ≥ 0"},
		{"list for count", "http_client:\n  max_retries: [1]\n", "http_client.max_retries", "c.yaml:2", "must be an integer ≥ 0"},
		{"overflowing count", "http_client:\n  max_connections: 99999999999999999999\n", "http_client.max_connections", "c.yaml:2", "must be an integer"},
		{"hex count", "http_client:\n  max_connections: 0x10\n", "http_client.max_connections", "c.yaml:2", "must be an integer"},
		{"negative retries", "http_client:\n  max_retries: -1\n", "http_client.max_retries", "c.yaml:2", "must be an integer ≥ 0"},
		{"zero keepalive connections", "http_client:\n  max_keepalive_connections: 0\n", "http_client.max_keepalive_connections", "c.yaml:2", "must be an integer ≥ 1"},
		{"zero keepalive_expiry", "http_client:\n  keepalive_expiry: 0\n", "http_client.keepalive_expiry", "c.yaml:2", "must be a duration > 0"},
		{"zero connection_timeout", "app: 1\nhttp_client:\n  connection_timeout: 0s\n", "http_client.connection_timeout", "c.yaml:3", "must be a duration > 0"},
		{"zero request_timeout", "http_client:\n  request_timeout: 0.0\n", "http_client.request_timeout", "c.yaml:2", "must be a duration > 0"},
		{"zero pool_timeout", "http_client:\n  pool_timeout: 0\n", "http_client.pool_timeout", "c.yaml:2", "must be a duration > 0"},
		{"negative duration", "http_client:\n  connection_timeout: -1\n", "http_client.connection_timeout", "c.yaml:2", `"-1"`},
		{"negative Go duration", "http_client:\n  max_connection_age: -5s\n", "http_client.max_connection_age", "c.yaml:2", "must be a duration ≥ 0"},
		{"NaN duration", "http_client:\n  request_timeout: .nan\n", "http_client.request_timeout", "c.yaml:2", `".nan"`},
		{"NaN string duration", "http_client:\n  request_timeout: NaN\n", "http_client.request_timeout", "c.yaml:2", `"NaN"`},
		{"infinite duration", "http_client:\n  pool_timeout: .inf\n", "http_client.pool_timeout", "c.yaml:2", "must be a duration"},
		{"overflowing duration", "http_client:\n  pool_timeout: 1e300\n", "http_client.pool_timeout", "c.yaml:2", "must be a duration"},
		{"word duration", "http_client:\n  stats_log_interval: soon\n", "http_client.stats_log_interval", "c.yaml:2", "must be a duration ≥ 0"},
		{"zero retry_max_backoff", "http_client:\n  retry_max_backoff: 0\n", "http_client.retry_max_backoff", "c.yaml:2", "must be a duration > 0"},
		{"yes for bool", "http_client:\n  enable_http2: yes\n", "http_client.enable_http2", "c.yaml:2", "must be true or false"},
		{"number for bool", "http_client:\n  h2c: 2\n", "http_client.h2c", "c.yaml:2", "must be true or false"},
		{"word for bool", "http_client:\n  allow_insecure_token: maybe\n", "http_client.allow_insecure_token", "c.yaml:2", "must be true or false"},
		{"zero backoff factor", "http_client:\n  retry_backoff_factor: 0\n", "http_client.retry_backoff_factor", "c.yaml:2", "must be a number of seconds > 0"},
		{"negative backoff factor", "http_client:\n  retry_backoff_factor: -0.5\n", "http_client.retry_backoff_factor", "c.yaml:2", "> 0"},
		{"infinite backoff factor", "http_client:\n  retry_backoff_factor: .inf\n", "http_client.retry_backoff_factor", "c.yaml:2", "> 0"},
		{"Inf backoff factor", "http_client:\n  retry_backoff_factor: Inf\n", "http_client.retry_backoff_factor", "c.yaml:2", "> 0"},
		{"budget above 100", "http_client:\n  retry_budget_percent: 101\n", "http_client.retry_budget_percent", "c.yaml:2", "must be a number from 0 to 100"},
		{"negative budget", "http_client:\n  retry_budget_percent: -1\n", "http_client.retry_budget_percent", "c.yaml:2", "from 0 to 100"},
		{"negative budget floor", "http_client:\n  retry_budget_min_per_second: -1\n", "http_client.retry_budget_min_per_second", "c.yaml:2", "must be a number ≥ 0"},
		{"zero max_response_bytes", "http_client:\n  max_response_bytes: 0\n", "http_client.max_response_bytes", "c.yaml:2", "must be an integer ≥ 1"},
		{"negative max_response_bytes", "http_client:\n  max_response_bytes: -1\n", "http_client.max_response_bytes", "c.yaml:2", "must be an integer ≥ 1"},
		{
			"keepalive above max_connections", "http_client:\n  max_connections: 10\n  max_keepalive_connections: 20\n",
			"http_client.max_keepalive_connections", "c.yaml:3", `= "20": must be ≤ max_connections (10)`,
		},
		{
			"keepalive above default max_connections", "http_client:\n  max_keepalive_connections: 150\n",
			"http_client.max_keepalive_connections", "c.yaml:2", "must be ≤ max_connections (100)",
		},
		{"unknown key with suggestion", "http_client:\n  max_connection: 5\n", "http_client.max_connection", "c.yaml:2", "unknown key, did you mean max_connections?"},
		{"unknown key in capitals", "http_client:\n  max_retries: 1\n  MAX_RETRIES: 5\n", "http_client.MAX_RETRIES", "c.yaml:3", "did you mean max_retries?"},
		{"unknown key transposed", "http_client:\n  poll_timeout: 5\n", "http_client.poll_timeout", "c.yaml:2", "did you mean pool_timeout?"},
		{"unknown key without suggestion", "http_client:\n  frobnicate: 5\n", "http_client.frobnicate", "c.yaml:2", "http_client.frobnicate: unknown key"},
		{"merge key", "base: &b {max_retries: 1}\nhttp_client:\n  <<: *b\n", "http_client.<<", "c.yaml:3", "unknown key"},
		{"duplicate key", "http_client:\n  max_connections: 10\n  max_retries: 1\n  max_connections: 20\n", "http_client.max_connections", "c.yaml:4", "duplicate key, first set on line 2"},
		{"duplicate block", "http_client:\n  max_retries: 1\napp: {}\nhttp_client:\n  max_retries: 2\n", "http_client", "c.yaml:4", "duplicate key, first set on line 1"},
		{"block is a number", "http_client: 5\n", "http_client", "c.yaml:1", `http_client = "5": must be a mapping`},
		{"block is a list", "app: x\nhttp_client:\n  - max_retries: 1\n", "http_client", "c.yaml:3", "must be a mapping"},
		{"block is a string", "http_client: \"\"\n", "http_client", "c.yaml:1", "must be a mapping"},
		{"top level is a list", "- http_client: {}\n", "", "c.yaml:1", "the top level must be a mapping"},
		{"top level is a scalar", "hello\n", "", "c.yaml:1", "the top level must be a mapping"},
		{"invalid YAML", "http_client:\n  max_retries: [1\n", "", "c.yaml", "not valid YAML"},
		{"tab indentation", "http_client:\n\tmax_retries: 1\n", "", "c.yaml", "not valid YAML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConfig([]byte(tt.yaml), "c.yaml")
			if err == nil {
				t.Fatalf("got %+v, nil, want an error", got)
			}
			if !reflect.DeepEqual(got, Config{}) {
				t.Errorf("got %+v with the error, want the zero Config", got)
			}
			ce := asConfigError(t, err)
			if ce.Key != tt.key {
				t.Errorf("got Key %q, want %q (%v)", ce.Key, tt.key, err)
			}
			if ce.Source != tt.source {
				t.Errorf("got Source %q, want %q (%v)", ce.Source, tt.source, err)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("got %q, want it to contain %q", err, tt.message)
			}
		})
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

// envLookup returns a lookup function backed by m.
func envLookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestApplyEnv(t *testing.T) {
	fileYAML := "http_client:\n  max_connections: 40\n  max_keepalive_connections: 10\n  keepalive_expiry: 60\n  enable_http2: true\n"
	tests := []struct {
		name string
		env  map[string]string
		want func(*Config) // edits the file's result
	}{
		{"no variables", nil, nil},
		{"unrelated variables", map[string]string{"MAX_CONNECTIONS": "1", "WARMPOOL_TOKEN": "x"}, nil},
		{"count", map[string]string{"WARMPOOL_MAX_CONNECTIONS": "50"}, func(c *Config) { c.MaxConnections = 50 }},
		{"seconds", map[string]string{"WARMPOOL_KEEPALIVE_EXPIRY": "45"}, func(c *Config) { c.KeepaliveExpiry = 45 * time.Second }},
		{"Go duration", map[string]string{"WARMPOOL_KEEPALIVE_EXPIRY": "45s"}, func(c *Config) { c.KeepaliveExpiry = 45 * time.Second }},
		{"bool", map[string]string{"WARMPOOL_ENABLE_HTTP2": "false"}, func(c *Config) { c.EnableHTTP2 = false }},
		{"bool in ParseBool form", map[string]string{"WARMPOOL_H2C": "1"}, func(c *Config) { c.H2C = true }},
		{"float", map[string]string{"WARMPOOL_RETRY_BUDGET_PERCENT": "2.5"}, func(c *Config) { c.RetryBudgetPercent = 2.5 }},
		{"int64", map[string]string{"WARMPOOL_MAX_RESPONSE_BYTES": "1048576"}, func(c *Config) { c.MaxResponseBytes = 1 << 20 }},
		{"zero where zero is a setting", map[string]string{"WARMPOOL_MAX_RETRIES": "0"}, func(c *Config) { c.MaxRetries = 0 }},
		{"empty counts as unset", map[string]string{"WARMPOOL_MAX_CONNECTIONS": ""}, nil},
		{
			"several",
			map[string]string{"WARMPOOL_MAX_CONNECTIONS": "60", "WARMPOOL_POOL_TIMEOUT": "250ms", "WARMPOOL_ALLOW_INSECURE_TOKEN": "true"},
			func(c *Config) {
				c.MaxConnections, c.PoolTimeout, c.AllowInsecureToken = 60, 250*time.Millisecond, true
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file, err := ParseConfig([]byte(fileYAML), "config.yaml")
			if err != nil {
				t.Fatal(err)
			}
			got, err := applyEnv(file, envLookup(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			want := DefaultConfig() // defaults < file < env
			want.MaxConnections, want.MaxKeepaliveConnections, want.KeepaliveExpiry = 40, 10, time.Minute
			if tt.want != nil {
				tt.want(&want)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

func TestApplyEnvErrors(t *testing.T) {
	tests := []struct {
		name, variable, value, message string
	}{
		{"negative count", "WARMPOOL_MAX_CONNECTIONS", "-1", `warmpool: env WARMPOOL_MAX_CONNECTIONS: http_client.max_connections = "-1": must be an integer ≥ 1`},
		{"zero max_connections", "WARMPOOL_MAX_CONNECTIONS", "0", "must be an integer ≥ 1"},
		{"zero timeout", "WARMPOOL_REQUEST_TIMEOUT", "0", "must be a duration > 0"},
		{"zero keepalive_expiry", "WARMPOOL_KEEPALIVE_EXPIRY", "0s", "must be a duration > 0"},
		{"bad duration", "WARMPOOL_POOL_TIMEOUT", "5 seconds", "must be a duration > 0"},
		{"bad bool", "WARMPOOL_ENABLE_HTTP2", "yes", "must be true or false"},
		{"fractional count", "WARMPOOL_MAX_RETRIES", "1.5", "must be an integer ≥ 0"},
		{"NaN", "WARMPOOL_RETRY_BUDGET_MIN_PER_SECOND", "NaN", "must be a number ≥ 0"},
		{"whitespace", "WARMPOOL_MAX_RETRIES", " 3", `" 3"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := applyEnv(DefaultConfig(), envLookup(map[string]string{tt.variable: tt.value}))
			ce := asConfigError(t, err)
			if want := "env " + tt.variable; ce.Source != want {
				t.Errorf("got Source %q, want %q", ce.Source, want)
			}
			if want := "http_client." + strings.ToLower(strings.TrimPrefix(tt.variable, "WARMPOOL_")); ce.Key != want {
				t.Errorf("got Key %q, want %q", ce.Key, want)
			}
			if ce.Value != tt.value {
				t.Errorf("got Value %q, want %q", ce.Value, tt.value)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("got %q, want it to contain %q", err, tt.message)
			}
		})
	}

	// Every key has a variable that is read and checked.
	for _, f := range settings {
		name := "WARMPOOL_" + strings.ToUpper(f.key)
		t.Run(name, func(t *testing.T) {
			_, err := applyEnv(DefaultConfig(), envLookup(map[string]string{name: "bogus"}))
			if ce := asConfigError(t, err); ce.Source != "env "+name {
				t.Errorf("got Source %q, want %q", ce.Source, "env "+name)
			}
		})
	}
}

func TestLoadConfig(t *testing.T) {
	t.Run("environment wins over file", func(t *testing.T) {
		path := writeConfigFile(t, "http_client:\n  max_connections: 40\n  max_keepalive_connections: 10\n  enable_http2: true\n")
		t.Setenv("WARMPOOL_MAX_CONNECTIONS", "50")
		t.Setenv("WARMPOOL_ENABLE_HTTP2", "false")
		t.Setenv("WARMPOOL_KEEPALIVE_EXPIRY", "45s")
		got, err := LoadConfig(path)
		if err != nil {
			t.Fatal(err)
		}
		want := DefaultConfig()
		want.MaxConnections, want.MaxKeepaliveConnections, want.EnableHTTP2, want.KeepaliveExpiry = 50, 10, false, 45*time.Second
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v, want %+v", got, want)
		}
	})
	t.Run("no file", func(t *testing.T) {
		t.Setenv("WARMPOOL_MAX_RETRIES", "0")
		got, err := LoadConfig("")
		if err != nil {
			t.Fatal(err)
		}
		want := DefaultConfig()
		want.MaxRetries = 0
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v, want %+v", got, want)
		}
	})
	t.Run("bad variable", func(t *testing.T) {
		t.Setenv("WARMPOOL_MAX_CONNECTIONS", "many")
		_, err := LoadConfig(writeConfigFile(t, briefYAML))
		if ce := asConfigError(t, err); ce.Source != "env WARMPOOL_MAX_CONNECTIONS" || ce.Value != "many" {
			t.Errorf("got Source %q, Value %q, want %q, %q", ce.Source, ce.Value, "env WARMPOOL_MAX_CONNECTIONS", "many")
		}
	})
	t.Run("variable breaks a file setting", func(t *testing.T) {
		t.Setenv("WARMPOOL_MAX_KEEPALIVE_CONNECTIONS", "30")
		_, err := LoadConfig(writeConfigFile(t, "http_client:\n  max_connections: 25\n"))
		ce := asConfigError(t, err)
		if ce.Key != "http_client.max_keepalive_connections" || ce.Source != "env WARMPOOL_MAX_KEEPALIVE_CONNECTIONS" {
			t.Errorf("got Key %q, Source %q, want the keepalive variable", ce.Key, ce.Source)
		}
	})
	t.Run("bad file names its path and line", func(t *testing.T) {
		path := writeConfigFile(t, "http_client:\n  max_retries: 1\n  pool_timeout: never\n")
		_, err := LoadConfig(path)
		if ce := asConfigError(t, err); ce.Source != path+":3" {
			t.Errorf("got Source %q, want %q", ce.Source, path+":3")
		}
	})
	t.Run("missing file", func(t *testing.T) {
		_, err := LoadConfig(filepath.Join(t.TempDir(), "absent.yaml"))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("got %v, want an error matching fs.ErrNotExist", err)
		}
	})
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
	// Fields whose zero is a setting stay zero; the rest take their defaults.
	want := DefaultConfig()
	want.EnableHTTP2, want.MaxRetries, want.RetryBudgetPercent, want.RetryBudgetMinPerSecond = false, 0, 0, 0
	if got := (Config{}).withDefaults(); !reflect.DeepEqual(got, want) {
		t.Errorf("Config{}: got %+v, want %+v", got, want)
	}

	set := Config{
		MaxKeepaliveConnections: 1, MaxConnections: 2, KeepaliveExpiry: 3, ConnectionTimeout: 4, RequestTimeout: 5,
		PoolTimeout: 6, EnableHTTP2: true, H2C: true, MaxRetries: 7, RetryBackoffFactor: 8, RetryMaxBackoff: 9,
		RetryBudgetPercent: 10, RetryBudgetMinPerSecond: 11, MaxConnectionAge: 12, MaxResponseBytes: 13,
		StatsLogInterval: 14, AllowInsecureToken: true, Auth: AuthConfig{RefreshBefore: 15, Timeout: 16},
	}
	if got := set.withDefaults(); !reflect.DeepEqual(got, set) {
		t.Errorf("all set: got %+v, want it unchanged", got)
	}

	if got := (Config{MaxConnections: 8}).withDefaults().MaxKeepaliveConnections; got != 8 {
		t.Errorf("MaxConnections 8: got MaxKeepaliveConnections %d, want 8", got)
	}
	if got := (Config{MaxConnections: 50}).withDefaults().MaxKeepaliveConnections; got != 20 {
		t.Errorf("MaxConnections 50: got MaxKeepaliveConnections %d, want 20", got)
	}
}

// TestSettingsTable checks that the key table maps each key to its own Config
// field and covers every field, so a new field cannot be forgotten.
func TestSettingsTable(t *testing.T) {
	owner := map[string]string{} // Config field name → key
	for _, f := range settings {
		var c Config
		if !f.parse(&c, "7") && !f.parse(&c, "true") {
			t.Fatalf("%s: accepts neither 7 nor true", f.key)
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

func TestParseConfigAuth(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want AuthConfig // before defaults
	}{
		{"none", "http_client: {}\n", AuthConfig{}},
		{"empty block", "auth:\n", AuthConfig{}},
		{"file", "auth:\n  type: file\n  path: /var/run/secrets/tokens/backend\n", AuthConfig{Type: "file", Path: "/var/run/secrets/tokens/backend"}},
		{"env", "auth: {type: env, env: BACKEND_TOKEN}\n", AuthConfig{Type: "env", Env: "BACKEND_TOKEN"}},
		{"command as a list", "auth:\n  type: command\n  command: [gcloud, auth, print-identity-token, --audiences=https://b c]\n",
			AuthConfig{Type: "command", Command: []string{"gcloud", "auth", "print-identity-token", "--audiences=https://b c"}}},
		{"command as a string", "auth:\n  type: command\n  command: gcloud  auth print-identity-token\n",
			AuthConfig{Type: "command", Command: []string{"gcloud", "auth", "print-identity-token"}}},
		{"static", "auth:\n  type: static\n  token: \"abc\"\n", AuthConfig{Type: "static", Token: "abc"}},
		{"gcp, every common key", "http_client:\n  max_retries: 1\nauth:\n  type: gcp\n  audience: https://backend-xyz.a.run.app\n  refresh_before: 10m\n  timeout: 2.5\n",
			AuthConfig{Type: "gcp", Audience: "https://backend-xyz.a.run.app", RefreshBefore: 10 * time.Minute, Timeout: 2500 * time.Millisecond}},
		{"gcp, a token per origin", "auth:\n  type: gcp\n", AuthConfig{Type: "gcp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConfig([]byte(tt.yaml), "c.yaml")
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			orDefault(&want.RefreshBefore, 5*time.Minute)
			orDefault(&want.Timeout, 10*time.Second)
			if !reflect.DeepEqual(got.Auth, want) {
				t.Errorf("got %+v, want %+v", got.Auth, want)
			}
		})
	}
}

func TestParseConfigAuthErrors(t *testing.T) {
	tests := []struct {
		name, yaml, key, source, message string
	}{
		{"unknown key", "auth:\n  type: gcp\n  audiance: x\n", "auth.audiance", "c.yaml:3", "unknown key, did you mean audience?"},
		{"unknown type", "auth:\n  type: gpc\n", "auth.type", "c.yaml:2", `auth.type = "gpc": must be one of command, env, file, gcp, static`},
		{"required key missing", "auth:\n  type: file\n", "auth.path", "c.yaml:2", "auth.path: required by auth.type file"},
		{"key of another type", "auth:\n  type: env\n  env: X\n  path: /p\n", "auth.path", "c.yaml:4", "not used by auth.type env"},
		{"audience for a built-in type", "auth:\n  type: file\n  path: /p\n  audience: x\n", "auth.audience", "c.yaml:4", "not used by auth.type file"},
		{"key without a type", "auth:\n  token: abc\n", "auth.token", "c.yaml:2", "set, but auth.type is not"},
		{"empty string", "auth:\n  type: \"\"\n", "auth.type", "c.yaml:2", "must be a non-empty string"},
		{"null path", "auth:\n  type: file\n  path: ~\n", "auth.path", "c.yaml:3", "must be a non-empty string"},
		{"empty command list", "auth:\n  type: command\n  command: []\n", "auth.command", "c.yaml:3", "must be a list of strings"},
		{"blank command string", "auth:\n  type: command\n  command: \" \"\n", "auth.command", "c.yaml:3", "must be a list of strings"},
		{"command list of lists", "auth:\n  type: command\n  command: [[a]]\n", "auth.command", "c.yaml:3", "must be a list of strings"},
		{"list for a string", "auth:\n  type: [file]\n", "auth.type", "c.yaml:2", "must be a non-empty string"},
		{"zero refresh_before", "auth:\n  refresh_before: 0\n", "auth.refresh_before", "c.yaml:2", "must be a duration > 0"},
		{"negative timeout", "auth:\n  timeout: -1s\n", "auth.timeout", "c.yaml:2", "must be a duration > 0"},
		{"env name with =", "auth:\n  type: env\n  env: A=B\n", "auth.env", "c.yaml:3", "must be the name of an environment variable"},
		{"duplicate key", "auth:\n  type: env\n  type: file\n", "auth.type", "c.yaml:3", "duplicate key, first set on line 2"},
		{"block is a string", "auth: gcp\n", "auth", "c.yaml:1", "must be a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.yaml), "c.yaml")
			ce := asConfigError(t, err)
			if ce.Key != tt.key || ce.Source != tt.source {
				t.Errorf("got Key %q, Source %q, want %q, %q (%v)", ce.Key, ce.Source, tt.key, tt.source, err)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("got %q, want it to contain %q", err, tt.message)
			}
		})
	}
}

// loadAuth loads yaml and then env, as LoadConfig does.
func loadAuth(yaml string, env map[string]string) (Config, error) {
	l := newConfigLoader(baseConfig())
	if err := l.yaml([]byte(yaml), "c.yaml"); err != nil {
		return Config{}, err
	}
	if err := l.env(envLookup(env)); err != nil {
		return Config{}, err
	}
	return l.result()
}

func TestAuthEnv(t *testing.T) {
	const file = "auth:\n  type: file\n  path: /p\n  refresh_before: 1m\n"
	tests := []struct {
		name string
		env  map[string]string
		want AuthConfig
	}{
		{"no variables", nil, AuthConfig{Type: "file", Path: "/p", RefreshBefore: time.Minute, Timeout: 10 * time.Second}},
		{"a key of the same type", map[string]string{"WARMPOOL_AUTH_PATH": "/q", "WARMPOOL_AUTH_TYPE": "file"},
			AuthConfig{Type: "file", Path: "/q", RefreshBefore: time.Minute, Timeout: 10 * time.Second}},
		{"another type replaces the block", map[string]string{"WARMPOOL_AUTH_TYPE": "command", "WARMPOOL_AUTH_COMMAND": "gcloud auth print-identity-token", "WARMPOOL_AUTH_TIMEOUT": "3s"},
			AuthConfig{Type: "command", Command: []string{"gcloud", "auth", "print-identity-token"}, RefreshBefore: 5 * time.Minute, Timeout: 3 * time.Second}},
		{"every variable", map[string]string{"WARMPOOL_AUTH_TYPE": "gcp", "WARMPOOL_AUTH_AUDIENCE": "https://b", "WARMPOOL_AUTH_REFRESH_BEFORE": "90"},
			AuthConfig{Type: "gcp", Audience: "https://b", RefreshBefore: 90 * time.Second, Timeout: 10 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadAuth(file, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Auth, tt.want) {
				t.Errorf("got %+v, want %+v", got.Auth, tt.want)
			}
		})
	}

	errs := []struct {
		name   string
		env    map[string]string
		key    string
		source string
	}{
		{"bad duration", map[string]string{"WARMPOOL_AUTH_TIMEOUT": "soon"}, "auth.timeout", "env WARMPOOL_AUTH_TIMEOUT"},
		{"unknown type", map[string]string{"WARMPOOL_AUTH_TYPE": "magic"}, "auth.type", "env WARMPOOL_AUTH_TYPE"},
		{"key the type lacks", map[string]string{"WARMPOOL_AUTH_TYPE": "env"}, "auth.env", "env WARMPOOL_AUTH_TYPE"},
		{"key the type does not use", map[string]string{"WARMPOOL_AUTH_TOKEN": secret}, "auth.token", "env WARMPOOL_AUTH_TOKEN"},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadAuth(file, tt.env)
			ce := asConfigError(t, err)
			if ce.Key != tt.key || ce.Source != tt.source {
				t.Errorf("got Key %q, Source %q, want %q, %q (%v)", ce.Key, ce.Source, tt.key, tt.source, err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q shows the token", err)
			}
		})
	}
}

// TestAuthSettingsTable checks that each auth key sets its own AuthConfig
// field and that every field has a key.
func TestAuthSettingsTable(t *testing.T) {
	owner := map[string]string{}
	for _, f := range authSettings {
		var c Config
		if !f.parse(&c, "7") {
			t.Fatalf("%s: does not accept 7", f.key)
		}
		v := reflect.ValueOf(c.Auth)
		var changed []string
		for i := range v.NumField() {
			if !v.Field(i).IsZero() {
				changed = append(changed, v.Type().Field(i).Name)
			}
		}
		if len(changed) != 1 || !reflect.DeepEqual(c, Config{Auth: c.Auth}) {
			t.Fatalf("%s: set fields %v, want exactly one of Auth", f.key, changed)
		}
		owner[changed[0]] = f.key
		if want := strings.ToLower(changed[0]); strings.ReplaceAll(f.key, "_", "") != want {
			t.Errorf("key %s sets field %s", f.key, changed[0])
		}
		if name := f.envName(); name != "WARMPOOL_AUTH_"+strings.ToUpper(f.key) {
			t.Errorf("key %s: got variable %s", f.key, name)
		}
	}
	if n := reflect.TypeFor[AuthConfig]().NumField(); len(owner) != n {
		t.Errorf("got %d fields in the auth key table, want all %d of AuthConfig", len(owner), n)
	}
}
