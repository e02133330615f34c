package warmpool

import (
	"errors"
	"io/fs"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

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
		{"bool", map[string]string{"WARMPOOL_ENABLE_HTTP2": "false"}, func(c *Config) { c.DisableHTTP2 = true }},
		{"bool in ParseBool form", map[string]string{"WARMPOOL_H2C": "1"}, func(c *Config) { c.H2C = true }},
		{"float", map[string]string{"WARMPOOL_RETRY_BUDGET_PERCENT": "2.5"}, func(c *Config) { c.RetryBudgetPercent = 2.5 }},
		{"int64", map[string]string{"WARMPOOL_MAX_RESPONSE_BYTES": "1048576"}, func(c *Config) { c.MaxResponseBytes = 1 << 20 }},
		{"zero where zero is a setting", map[string]string{"WARMPOOL_MAX_RETRIES": "0"}, func(c *Config) { c.MaxRetries = -1 }},
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
			got, err := applyEnv(file, tt.env)
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
			_, err := applyEnv(DefaultConfig(), map[string]string{tt.variable: tt.value})
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
			_, err := applyEnv(DefaultConfig(), map[string]string{name: "bogus"})
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
		want.MaxConnections, want.MaxKeepaliveConnections, want.DisableHTTP2, want.KeepaliveExpiry = 50, 10, true, 45*time.Second
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
		want.MaxRetries = -1
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
