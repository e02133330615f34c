package warmpool

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

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
	l := newConfigLoader(Config{})
	l.yaml([]byte(yaml), "c.yaml")
	l.env(env)
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
