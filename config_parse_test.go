package warmpool

import (
	"math"
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
  learn_idle_timeout: false
  resolve_interval: 0
  balancer: round_robin
  slow_start: 10s
  eject_after_failures: 3
  eject_duration: 1m
  max_ejected_percent: 0
  concurrency_limit: adaptive
  limit_queue_timeout: 50ms
  circuit_breaker_failures: 5
  circuit_breaker_open_for: 2s
  hedge_after: 0.02
  hedge_max_extra_percent: 2.5
`,
			want: func(c *Config) {
				*c = Config{
					MaxKeepaliveConnections: 7,
					MaxConnections:          8,
					KeepaliveExpiry:         time.Second,
					ConnectionTimeout:       2 * time.Second,
					RequestTimeout:          3500 * time.Millisecond,
					PoolTimeout:             250 * time.Millisecond,
					DisableHTTP2:            true,
					H2C:                     true,
					MaxRetries:              -1,
					RetryBudgetPercent:      -1,
					RetryBudgetMinPerSecond: -1,
					DisableIdleLearning:     true,
					ResolveInterval:         -1,
					MaxEjectedPercent:       -1,
					ConcurrencyLimit:        "adaptive",
					LimitQueueTimeout:       50 * time.Millisecond,
					CircuitBreakerFailures:  5,
					CircuitBreakerOpenFor:   2 * time.Second,
					HedgeAfter:              "20ms",
					HedgeMaxExtraPercent:    2.5,
					RetryBackoffFactor:      0.1,
					RetryMaxBackoff:         time.Minute,
					MaxConnectionAge:        5 * time.Minute,
					MaxResponseBytes:        1024,
					StatsLogInterval:        15 * time.Second,
					AllowInsecureToken:      true,
					Balancer:                "round_robin",
					SlowStart:               10 * time.Second,
					EjectAfterFailures:      3,
					EjectDuration:           time.Minute,
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
			want: func(c *Config) { c.MaxRetries, c.DisableHTTP2 = 5, true },
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
