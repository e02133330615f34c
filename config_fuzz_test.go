package warmpool

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// FuzzParseConfig checks that ParseConfig never panics, that every error is a
// *ConfigError or a join of them, one a line, and that every Config it returns is complete and
// valid, and never prints its token.
func FuzzParseConfig(f *testing.F) {
	for _, seed := range []string{
		briefYAML,
		"",
		"~",
		"http_client: 5\n",
		"http_client:\n  max_connections: &a 5\n  max_keepalive_connections: *a\n",
		"a: &x {max_retries: 1}\nhttp_client: *x\n",
		"http_client: {keepalive_expiry: 1e308, pool_timeout: \"9223372036.854775807\"}\n",
		"http_client:\n  <<: {max_connections: 5}\n",
		"http_client:\n  max_connections: 10\n  max_connections: 20\n",
		"http_client:\n  request_timeout: !!binary aGVsbG8=\n",
		"---\nhttp_client: {}\n---\nhttp_client: 1\n",
		"http_client:\n  enable_http2: |\n    true\n",
		"auth:\n  type: gcp\n  audience: https://backend\n  refresh_before: 10m\n  timeout: 2\n",
		"auth:\n  type: command\n  command: [gcloud, auth, print-identity-token]\n",
		"auth: {type: command, command: gcloud auth print-identity-token}\n",
		"auth:\n  type: static\n  token: s3cr3t-t0ken-value-long\n",
		"auth:\n  type: file\n  path: ~\n",
		"auth:\n  type: env\n  env: A=B\n  token: x\n",
		"a: &c [x, y]\nauth:\n  type: command\n  command: *c\n",
		"http_client:\n  headers: {User-Agent: my-svc/1.2, x-team: search, X-Team: again}\n",
		"http_client:\n  headers:\n    Authorization: x\n    \"a b\": \"\\n\"\n    X-A: [1]\n",
		"httpClient: {}\nauth: {}\nAUTH: {}\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data, "fuzz.yaml")
		if err != nil {
			checkConfigErrors(t, err)
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("ParseConfig returned %+v, which fails Validate: %v", c, err)
		}
		if !reflect.DeepEqual(c, c.WithDefaults()) {
			t.Fatalf("ParseConfig returned %+v, with defaults still to fill", c)
		}
		if tok := c.Auth.Token; len(tok) >= 16 && strings.Contains(fmt.Sprintf("%v %+v %#v", c, c, c), tok) {
			t.Fatalf("the config prints its token %q", tok)
		}
	})
}

// checkConfigErrors fails unless err is a one-line *ConfigError, or joins
// several, each its own line.
func checkConfigErrors(t testing.TB, err error) {
	t.Helper()
	list := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
		if len(list) < 2 {
			t.Fatalf("got a join of %d errors, want a single one as it is", len(list))
		}
	}
	var lines []string
	for _, e := range list {
		if _, ok := e.(*ConfigError); !ok {
			t.Fatalf("got error %v (%T), want a *ConfigError", e, e)
		}
		if strings.Contains(e.Error(), "\n") {
			t.Fatalf("got a multi-line message %q", e)
		}
		lines = append(lines, e.Error())
	}
	if got, want := err.Error(), strings.Join(lines, "\n"); got != want {
		t.Fatalf("got message %q, want %q", got, want)
	}
	var first *ConfigError
	if !errors.As(err, &first) || first != list[0] {
		t.Fatalf("errors.As found %v, want the first, %v", first, list[0])
	}
}

// FuzzHeadersEnv checks that WARMPOOL_HEADERS never panics, that every
// error is a *ConfigError, and that headers it accepts pass Validate.
func FuzzHeadersEnv(f *testing.F) {
	for _, seed := range []string{
		"User-Agent: my-svc/1.2; X-Team: search", "Accept: text/html;q=0.9\nX-A: 1\n", "a", ":", ";;", "X: \x00",
		"authorization: x", "X-A: 1; x-a: 2", "\n\n", "X-A:", " X-A : b ",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := applyEnv(DefaultConfig(), map[string]string{"WARMPOOL_HEADERS": s})
		if err != nil {
			checkConfigErrors(t, err)
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("WARMPOOL_HEADERS=%q gave %#v, which fails Validate: %v", s, c.Headers, err)
		}
	})
}

// FuzzParseDuration checks that parseConfigDuration never panics, never returns a
// negative duration, and reads back what time.Duration.String writes.
func FuzzParseDuration(f *testing.F) {
	for _, seed := range []string{
		"30", "30.0", "0.2", "30s", "200ms", "1h30m", "0", "-0", "-1", "-1s", "NaN", "+Inf", "1e400",
		"9223372036.854775807", "9223372036.854775808", "2562047h47m16.854775807s", "0x1p-2", "1e-10", ".5", "",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseConfigDuration(s)
		if err != nil {
			return
		}
		if d < 0 {
			t.Fatalf("parseConfigDuration(%q) = %v, want ≥ 0", s, d)
		}
		if back, err := parseConfigDuration(d.String()); err != nil || back != d {
			t.Fatalf("parseConfigDuration(%q) = %v, but parseConfigDuration(%q) = %v, %v", s, d, d.String(), back, err)
		}
	})
}
