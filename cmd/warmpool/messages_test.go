package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/refserver"
)

// TestMessages checks, whole, what a user reads on stderr when post, doctor
// or bench fail: one "warmpool <cmd>: " prefix, the input echoed without
// credentials, the library's error once, and the fix where there is one.
func TestMessages(t *testing.T) {
	srv := newRefserver(t, refserver.Options{Token: "s3cret"})
	slow := newRefserver(t, refserver.Options{Delay: 5 * time.Second})
	closed := newRefserver(t, refserver.Options{})
	closed.Close()
	t.Setenv("WARMPOOL_MAX_RETRIES", "0") // a refused dial is retried with backoff otherwise
	t.Setenv("WARMPOOL_TOKEN", "")
	answer, slowAnswer, closedAnswer := srv.URL()+"/answer", slow.URL()+"/answer", closed.URL()+"/answer"

	tests := []struct {
		name string
		args []string
		want string // report's output, whole
		code int
	}{
		{"no scheme", []string{"post", "127.0.0.1:27180/answer"},
			"warmpool post: \"127.0.0.1:27180/answer\" is not a URL: add the scheme, such as http://127.0.0.1:27180/answer\nRun 'warmpool post -h' for usage.\n", 2},
		{"no scheme, doctor", []string{"doctor", "localhost:8080/answer"},
			"warmpool doctor: \"localhost:8080/answer\" is not a URL: add the scheme, such as http://localhost:8080/answer\nRun 'warmpool doctor -h' for usage.\n", 2},
		{"no scheme, bench", []string{"bench", "127.0.0.1:27180/answer"},
			"warmpool bench: \"127.0.0.1:27180/answer\" is not a URL: add the scheme, such as http://127.0.0.1:27180/answer\nRun 'warmpool bench -h' for usage.\n", 2},
		{"no scheme, credentials left out", []string{"post", "user:pw@127.0.0.1:27180/answer?token=x"},
			"warmpool post: \"127.0.0.1:27180/answer\" is not a URL: add the scheme, such as http://127.0.0.1:27180/answer\nRun 'warmpool post -h' for usage.\n", 2},
		{"other scheme", []string{"post", "ftp://127.0.0.1/answer"},
			"warmpool post: \"ftp://127.0.0.1/answer\" is not an http:// or https:// URL\nRun 'warmpool post -h' for usage.\n", 2},
		{"relative", []string{"post", "/answer"},
			"warmpool post: \"/answer\" is not an absolute URL: want a scheme and a host, such as http://127.0.0.1:8080/answer\nRun 'warmpool post -h' for usage.\n", 2},
		{"-timeout", []string{"post", slowAnswer, "-timeout", "100ms"},
			"warmpool post: no answer within -timeout 100ms: POST " + slowAnswer + ": context deadline exceeded\n", 1},
		{"status", []string{"post", answer + "?status=500", "-token", "s3cret"},
			"warmpool post: POST " + answer + ": status 500 Internal Server Error: \"{\\\"error\\\":\\\"injected: internal server error\\\",\\\"status\\\":500}\\n\"\n", 1},
		{"refused", []string{"post", closedAnswer},
			"warmpool post: POST " + closedAnswer + ": dial tcp " + closed.Addr() + ": connect: connection refused\n", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runCLI(t, t.Context(), tt.args...)
			var got bytes.Buffer
			report(&got, err)
			if got.String() != tt.want || exitCode(err) != tt.code {
				t.Errorf("got (exit %d)\n%s\nwant (exit %d)\n%s", exitCode(err), got.String(), tt.code, tt.want)
			}
		})
	}

	t.Run("401", func(t *testing.T) {
		// The body between is the server's, redacted by the library.
		_, _, err := runCLI(t, t.Context(), "post", answer)
		var got bytes.Buffer
		report(&got, err)
		prefix := "warmpool post: POST " + answer + ": status 401 Unauthorized: "
		suffix := " (the server wants a bearer token: give it with -token, $WARMPOOL_TOKEN or the auth: block of -config)\n"
		if s := got.String(); !strings.HasPrefix(s, prefix) || !strings.HasSuffix(s, suffix) || strings.Contains(s, "warmpool: ") {
			t.Errorf("got %q, want %q…%q with one prefix", s, prefix, suffix)
		}
	})

	t.Run("errors of a load run", func(t *testing.T) {
		_, stderr, err := runCLI(t, t.Context(), "post", closedAnswer, "-n", "2")
		var got bytes.Buffer
		report(&got, err)
		want := "warmpool post: sending 2 requests over 1 worker to " + closedAnswer + "\n" +
			"warmpool post: 2 requests failed with kind refused; the first: POST " + closedAnswer + ": dial tcp " + closed.Addr() + ": connect: connection refused\n"
		if stderr != want || got.String() != "warmpool post: 2 of 2 requests failed\n" {
			t.Errorf("stderr:\n%s\nwant\n%s\nthen %q", stderr+got.String(), want, "warmpool post: 2 of 2 requests failed\n")
		}
	})
}

func TestShownInput(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:1/a":                 "127.0.0.1:1/a",
		"u:p@127.0.0.1:1/a?token=x#f":   "127.0.0.1:1/a",
		"http://u:p@h:1/a?x=1":          "http://h:1/a",
		"h":                             "h",
		"ftp://u@h/a@b":                 "ftp://h/a@b",
		"https://h/path/with/slashes?q": "https://h/path/with/slashes",
	} {
		if got := shownInput(in); got != want {
			t.Errorf("shownInput(%q): got %q, want %q", in, got, want)
		}
	}
}
