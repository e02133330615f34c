package warmpool

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseConfigHeaders(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want map[string]string
	}{
		{"none", "http_client: {}\n", nil, nil},
		{"null", "http_client:\n  headers:\n", nil, nil},
		{"empty", "http_client:\n  headers: {}\n", nil, nil},
		{"flow mapping", `http_client: {headers: {User-Agent: "my-svc/1.2", X-Team: search}}` + "\n", nil,
			map[string]string{"User-Agent": "my-svc/1.2", "X-Team": "search"}},
		{"canonicalised", "http_client:\n  headers:\n    user-agent: a\n    x-request-source: b\n    X_TEAM: c\n", nil,
			map[string]string{"User-Agent": "a", "X-Request-Source": "b", "X_team": "c"}},
		{"values as written", "http_client:\n  headers:\n    X-Version: 2\n    X-Empty: \"\"\n    Accept: \"text/html;q=0.9, */*\"\n    X-Tab: \"a\\tb\"\n", nil,
			map[string]string{"X-Version": "2", "X-Empty": "", "Accept": "text/html;q=0.9, */*", "X-Tab": "a\tb"}},
		{"aliased value", "ua: &ua my-svc/1.2\nhttp_client:\n  headers: {User-Agent: *ua}\n", nil, map[string]string{"User-Agent": "my-svc/1.2"}},
		{"env, semicolons", "", map[string]string{"WARMPOOL_HEADERS": "User-Agent: my-svc/1.2; x-team: search;"},
			map[string]string{"User-Agent": "my-svc/1.2", "X-Team": "search"}},
		{"env, newlines", "", map[string]string{"WARMPOOL_HEADERS": "Accept: text/html;q=0.9\nX-Team:  search \n\n"},
			map[string]string{"Accept": "text/html;q=0.9", "X-Team": "search"}},
		{"env, a colon in the value", "", map[string]string{"WARMPOOL_HEADERS": "X-Origin: https://a:8443"},
			map[string]string{"X-Origin": "https://a:8443"}},
		{"env replaces the file's", "http_client:\n  headers: {X-A: a, X-B: b}\n", map[string]string{"WARMPOOL_HEADERS": "X-C: c"},
			map[string]string{"X-C": "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadAuth(tt.yaml, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Headers, tt.want) {
				t.Errorf("got %#v, want %#v", got.Headers, tt.want)
			}
			if tt.want == nil && !reflect.DeepEqual(got, DefaultConfig()) {
				t.Errorf("got %+v, want DefaultConfig()", got)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestParseConfigHeadersErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want string
	}{
		{"Authorization", "http_client:\n  headers:\n    X-Team: a\n    authorization: Bearer s3cr3t\n", nil,
			"warmpool: c.yaml:4: http_client.headers.authorization: not allowed in headers: set the token in the auth block"},
		{"Host", "http_client:\n  headers: {Host: example.com}\n", nil,
			"warmpool: c.yaml:2: http_client.headers.Host: not allowed in headers: net/http takes Host from the request URL"},
		{"invalid name", "http_client:\n  headers:\n    \"X Team\": a\n", nil,
			"warmpool: c.yaml:3: http_client.headers.X Team: not a valid header name"},
		{"name with a colon", "http_client:\n  headers:\n    \"X-Team:\": a\n", nil,
			"warmpool: c.yaml:3: http_client.headers.X-Team:: not a valid header name"},
		{"empty name", "http_client:\n  headers:\n    \"\": a\n", nil,
			"warmpool: c.yaml:3: http_client.headers.: not a valid header name"},
		{"newline in value", "http_client:\n  headers:\n    X-Team: \"a\\r\\nX-Evil: 1\"\n", nil,
			"warmpool: c.yaml:3: http_client.headers.X-Team: not a valid header value: it holds a control character, such as a newline"},
		{"null value", "http_client:\n  headers:\n    X-Team:\n", nil,
			"warmpool: c.yaml:3: http_client.headers.X-Team: must be a header value, a string"},
		{"list value", "http_client:\n  headers:\n    X-Team: [a, b]\n", nil,
			"warmpool: c.yaml:3: http_client.headers.X-Team: must be a header value, a string"},
		{"duplicate in another case", "http_client:\n  headers:\n    X-Team: a\n    x-team: b\n", nil,
			"warmpool: c.yaml:4: http_client.headers.x-team: duplicate header, first set on line 3"},
		{"not a mapping", "http_client:\n  headers: \"User-Agent: x\"\n", nil,
			"warmpool: c.yaml:2: http_client.headers: must be a mapping of header names to values"},
		{"a list", "http_client:\n  headers:\n    - User-Agent: x\n", nil,
			"warmpool: c.yaml:3: http_client.headers: must be a mapping of header names to values"},
		{"every bad header", "http_client:\n  headers:\n    Authorization: x\n    X-A: \"\\n\"\n    X-B: ok\n", nil,
			"warmpool: c.yaml:3: http_client.headers.Authorization: not allowed in headers: set the token in the auth block\n" +
				"warmpool: c.yaml:4: http_client.headers.X-A: not a valid header value: it holds a control character, such as a newline"},
		{"env, no colon", "", map[string]string{"WARMPOOL_HEADERS": "User-Agent my-svc"},
			`warmpool: env WARMPOOL_HEADERS: http_client.headers: must be "Name: value" pairs, separated by newlines or ";"`},
		{"env, value split at a semicolon", "", map[string]string{"WARMPOOL_HEADERS": "Accept: text/html;q=0.9"},
			`warmpool: env WARMPOOL_HEADERS: http_client.headers: must be "Name: value" pairs, separated by newlines or ";"`},
		{"env, Authorization", "", map[string]string{"WARMPOOL_HEADERS": "X-A: 1; Authorization: Bearer s3cr3t"},
			"warmpool: env WARMPOOL_HEADERS: http_client.headers.Authorization: not allowed in headers: set the token in the auth block"},
		{"env, duplicate", "", map[string]string{"WARMPOOL_HEADERS": "X-A: 1; x-a: 2"},
			"warmpool: env WARMPOOL_HEADERS: http_client.headers.x-a: duplicate header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadAuth(tt.yaml, tt.env)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("got %v, want %s", err, tt.want)
			}
			checkConfigErrors(t, err)
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error %q shows a header value", err)
			}
		})
	}
}

func TestValidateHeaders(t *testing.T) {
	tests := []struct {
		name    string
		headers map[string]string
		want    string // "" for valid
	}{
		{"none", nil, ""},
		{"valid", map[string]string{"User-Agent": "my-svc/1.2", "x-team": "search", "X-Empty": ""}, ""},
		{"Authorization", map[string]string{"AUTHORIZATION": "Bearer s3cr3t"},
			"warmpool: http_client.headers.AUTHORIZATION: not allowed in headers: set the token in the auth block"},
		{"Host", map[string]string{"host": "b"}, "warmpool: http_client.headers.host: not allowed in headers: net/http takes Host from the request URL"},
		{"invalid name", map[string]string{"X(Team)": "a"}, "warmpool: http_client.headers.X(Team): not a valid header name"},
		{"invalid value", map[string]string{"X-Team": "a\x00"},
			"warmpool: http_client.headers.X-Team: not a valid header value: it holds a control character, such as a newline"},
		{"duplicate in another case", map[string]string{"X-Team": "a", "x-team": "b"},
			"warmpool: http_client.headers.x-team: duplicate header, also set as X-Team"},
		{"several, by name", map[string]string{"b c": "1", "A": "\n"},
			"warmpool: http_client.headers.A: not a valid header value: it holds a control character, such as a newline\n" +
				"warmpool: http_client.headers.b c: not a valid header name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Config{Headers: tt.headers}.Validate()
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
		})
	}
}
