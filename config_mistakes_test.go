package warmpool

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestTopLevelNearMiss(t *testing.T) {
	tests := []struct {
		name, yaml, want string // want: "" for no error
	}{
		{"dash", "http-client:\n  max_connections: 5\n", "warmpool: config.yaml:1: http-client: unknown top-level key; did you mean http_client?"},
		{"camel case", "app: x\nhttpClient:\n  max_connections: 5\n", "warmpool: config.yaml:2: httpClient: unknown top-level key; did you mean http_client?"},
		{"plural", "http_clients: {}\n", "warmpool: config.yaml:1: http_clients: unknown top-level key; did you mean http_client?"},
		{"capitals", "HTTP_CLIENT: {}\n", "warmpool: config.yaml:1: HTTP_CLIENT: unknown top-level key; did you mean http_client?"},
		{"no separator", "httpclient:\n", "warmpool: config.yaml:1: httpclient: unknown top-level key; did you mean http_client?"},
		{"typo", "htp_client: {}\n", "warmpool: config.yaml:1: htp_client: unknown top-level key; did you mean http_client?"},
		{"auth in capitals", "Auth:\n  type: gcp\n", "warmpool: config.yaml:1: Auth: unknown top-level key; did you mean auth?"},
		{"beside the right block", "http_client: {max_retries: 1}\nhttp-client: {max_retries: 2}\n",
			"warmpool: config.yaml:2: http-client: unknown top-level key; did you mean http_client?"},
		{"unrelated keys", "db: {max_connections: 1}\nhttp_server: {port: 80}\noauth: {}\nclient: 1\nhttp: {}\nauthor: me\n", ""},
		{"the blocks themselves", "http_client: {}\nauth: {}\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.yaml), "config.yaml")
			if tt.want == "" {
				if err != nil {
					t.Errorf("got %v, want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("got %v, want %s", err, tt.want)
			}
			if ce := asConfigError(t, err); !strings.HasPrefix(ce.Source, "config.yaml:") || ce.Key == "" {
				t.Errorf("got Key %q, Source %q, want the key and its line", ce.Key, ce.Source)
			}
		})
	}
}

// captureDefaultLog sends slog.Default to a buffer for the rest of the test.
func captureDefaultLog(t *testing.T) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})))
	t.Cleanup(func() { slog.SetDefault(prev) })
	return &buf
}

func TestLoadConfigLogsMissingBlock(t *testing.T) {
	tests := []struct {
		name, yaml string
		logs       bool
	}{
		{"empty file", "", true},
		{"only comments", "# http_client: later\n", true},
		{"other blocks", "app:\n  name: demo\n", true},
		{"auth block only", "auth:\n  type: env\n  env: BACKEND_TOKEN\n", true},
		{"empty http_client block", "http_client:\n", false},
		{"http_client block", "http_client: {max_retries: 1}\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfigFile(t, tt.yaml)
			buf := captureDefaultLog(t)
			if _, err := LoadConfig(path); err != nil {
				t.Fatal(err)
			}
			var got []string
			for line := range strings.Lines(buf.String()) {
				if strings.Contains(line, "http_client block") {
					got = append(got, line)
				}
			}
			want := []string{`level=INFO msg="warmpool: the config file has no http_client block; using the defaults" file=` + path + "\n"}
			if !tt.logs {
				want = nil
			}
			if strings.Join(got, "") != strings.Join(want, "") {
				t.Errorf("got log %q, want %q", got, want)
			}
		})
	}
	t.Run("no file", func(t *testing.T) {
		buf := captureDefaultLog(t)
		if _, err := LoadConfig(""); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(buf.String(), "http_client block") {
			t.Errorf("got log %q, want none without a file", buf)
		}
	})
	t.Run("not on error", func(t *testing.T) {
		buf := captureDefaultLog(t)
		if _, err := LoadConfig(writeConfigFile(t, "httpClient: {}\n")); err == nil {
			t.Fatal("got nil, want the near miss")
		}
		if strings.Contains(buf.String(), "http_client block") {
			t.Errorf("got log %q, want none with an error", buf)
		}
	})
}

func TestUnknownEnv(t *testing.T) {
	const file = "auth:\n  type: env\n  env: WARMPOOL_BACKEND_TOKEN\n"
	tests := []struct {
		name string
		env  map[string]string
		want string // "" for no error
	}{
		{"typo", map[string]string{"WARMPOOL_MAX_CONECTIONS": "5"},
			"warmpool: env WARMPOOL_MAX_CONECTIONS: unknown variable; did you mean WARMPOOL_MAX_CONNECTIONS?"},
		{"auth typo", map[string]string{"WARMPOOL_AUTH_AUDIENSE": "https://b"},
			"warmpool: env WARMPOOL_AUTH_AUDIENSE: unknown variable; did you mean WARMPOOL_AUTH_AUDIENCE?"},
		{"transposed", map[string]string{"WARMPOOL_REQUEST_TIMEOTU": "5"},
			"warmpool: env WARMPOOL_REQUEST_TIMEOTU: unknown variable; did you mean WARMPOOL_REQUEST_TIMEOUT?"},
		{"too far to guess", map[string]string{"WARMPOOL_BUDGET_PERCENT": "5"},
			"warmpool: env WARMPOOL_BUDGET_PERCENT: unknown variable; LoadConfig reads WARMPOOL_<KEY> for the keys of http_client, and WARMPOOL_AUTH_<KEY> for those of auth"},
		{"nothing near", map[string]string{"WARMPOOL_FROBNICATE": "1"},
			"warmpool: env WARMPOOL_FROBNICATE: unknown variable; LoadConfig reads WARMPOOL_<KEY> for the keys of http_client, and WARMPOOL_AUTH_<KEY> for those of auth"},
		{"several, by name", map[string]string{"WARMPOOL_MAX_RETRIE": "1", "WARMPOOL_H2": "true"},
			"warmpool: env WARMPOOL_H2: unknown variable; did you mean WARMPOOL_H2C?\n" +
				"warmpool: env WARMPOOL_MAX_RETRIE: unknown variable; did you mean WARMPOOL_MAX_RETRIES?"},
		{"the command's token", map[string]string{"WARMPOOL_TOKEN": "t"}, ""},
		{"the command's upstream token", map[string]string{"WARMPOOL_UPSTREAM_TOKEN": "t"}, ""},
		{"the variable auth.env names", map[string]string{"WARMPOOL_BACKEND_TOKEN": "t"}, ""},
		{"the variable WARMPOOL_AUTH_ENV names", map[string]string{"WARMPOOL_AUTH_ENV": "WARMPOOL_OTHER_TOKEN", "WARMPOOL_OTHER_TOKEN": "t"}, ""},
		{"empty counts as unset", map[string]string{"WARMPOOL_MAX_CONECTIONS": ""}, ""},
		{"another prefix", map[string]string{"WARMPOOLX": "1", "warmpool_max_retries": "1", "MY_WARMPOOL_X": "1"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadAuth(file, tt.env)
			if tt.want == "" {
				if err != nil {
					t.Errorf("got %v, want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("got %v, want %s", err, tt.want)
			}
			checkConfigErrors(t, err)
			if ce, _ := errors.AsType[*ConfigError](err); ce.Key != "" || !strings.HasPrefix(ce.Source, "env WARMPOOL_") {
				t.Errorf("got Key %q, Source %q, want no key and the variable", ce.Key, ce.Source)
			}
		})
	}
	t.Run("LoadConfig", func(t *testing.T) {
		t.Setenv("WARMPOOL_MAX_CONECTIONS", "5")
		_, err := LoadConfig("")
		if want := "warmpool: env WARMPOOL_MAX_CONECTIONS: unknown variable; did you mean WARMPOOL_MAX_CONNECTIONS?"; err == nil || err.Error() != want {
			t.Errorf("got %v, want %s", err, want)
		}
	})
}

func TestConfigErrorsTogether(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want []string // the lines of the message
	}{
		{
			name: "every mistake of a file, by line",
			yaml: "httpClient: {}\nhttp_client:\n  pool_timeout: never\n  max_conections: 5\n  max_retries: -1\n  max_retries: 2\nauth:\n  type: file\n",
			want: []string{
				`warmpool: c.yaml:1: httpClient: unknown top-level key; did you mean http_client?`,
				`warmpool: c.yaml:3: http_client.pool_timeout = "never": must be a duration > 0 (seconds such as 30 or 0.5, or a Go duration such as "30s")`,
				`warmpool: c.yaml:4: http_client.max_conections: unknown key, did you mean max_connections?`,
				`warmpool: c.yaml:5: http_client.max_retries = "-1": must be an integer ≥ 0`,
				`warmpool: c.yaml:6: http_client.max_retries: duplicate key, first set on line 5`,
				`warmpool: c.yaml:8: auth.path: required by auth.type file`,
			},
		},
		{
			name: "a validation mistake among parse mistakes",
			yaml: "auth:\n  type: env\n  env: X\n  path: /p\nhttp_client:\n  max_connections: 10\n  max_keepalive_connections: 20\n  h2c: maybe\n",
			want: []string{
				`warmpool: c.yaml:4: auth.path: not used by auth.type env`,
				`warmpool: c.yaml:7: http_client.max_keepalive_connections = "20": must be ≤ max_connections (10)`,
				`warmpool: c.yaml:8: http_client.h2c = "maybe": must be true or false`,
			},
		},
		{
			name: "file, then environment",
			yaml: "http_client:\n  h2c: maybe\n",
			env:  map[string]string{"WARMPOOL_POOL_TIMEOUT": "0", "WARMPOOL_MAX_RETRYS": "1"},
			want: []string{
				`warmpool: c.yaml:2: http_client.h2c = "maybe": must be true or false`,
				`warmpool: env WARMPOOL_POOL_TIMEOUT: http_client.pool_timeout = "0": must be a duration > 0 (seconds such as 30 or 0.5, or a Go duration such as "30s")`,
				`warmpool: env WARMPOOL_MAX_RETRYS: unknown variable; did you mean WARMPOOL_MAX_RETRIES?`,
			},
		},
		{
			name: "no follow-on mistakes",
			yaml: "http_client:\n  max_connections: many\n  max_keepalive_connections: 150\nauth:\n  type: [file]\n  path: /p\n",
			want: []string{
				`warmpool: c.yaml:2: http_client.max_connections = "many": must be an integer ≥ 1`,
				`warmpool: c.yaml:5: auth.type: must be a non-empty string`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadAuth(tt.yaml, tt.env)
			if err == nil {
				t.Fatalf("got %+v, nil, want errors", got)
			}
			if want := strings.Join(tt.want, "\n"); err.Error() != want {
				t.Errorf("got\n%s\nwant\n%s", err, want)
			}
			checkConfigErrors(t, err)
		})
	}

	t.Run("Validate", func(t *testing.T) {
		err := Config{MaxConnections: -1, PoolTimeout: -1, Auth: AuthConfig{Type: "file"}}.Validate()
		want := `warmpool: http_client.max_connections = "-1": must be an integer ≥ 1` + "\n" +
			`warmpool: http_client.pool_timeout = "-1ns": must be a duration > 0 (seconds such as 30 or 0.5, or a Go duration such as "30s")` + "\n" +
			`warmpool: auth.path: required by auth.type file`
		if err == nil || err.Error() != want {
			t.Errorf("got\n%v\nwant\n%s", err, want)
		}
		checkConfigErrors(t, err)
	})
}
