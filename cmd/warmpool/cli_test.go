package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/warmpool/warmpool"
)

func TestUsage(t *testing.T) {
	// None of these reaches the network: the port-1 URL is never dialed.
	const url = "http://127.0.0.1:1/answer"
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string // substring; "" checks that stdout is empty
	}{
		{"no command", nil, 2, ""},
		{"unknown command", []string{"frobnicate"}, 2, ""},
		{"top-level -h", []string{"-h"}, 0, "Commands:"},
		{"top-level --help", []string{"--help"}, 0, "Examples:"},
		{"help", []string{"help"}, 0, "Commands:"},
		{"help post", []string{"help", "post"}, 0, "Usage: warmpool post URL"},
		{"help serve", []string{"help", "serve"}, 0, "Usage: warmpool serve"},
		{"help doctor", []string{"help", "doctor"}, 0, "Usage: warmpool doctor URL"},
		{"help unknown", []string{"help", "frobnicate"}, 2, ""},
		{"help two commands", []string{"help", "post", "serve"}, 2, ""},
		{"version", []string{"version"}, 0, "warmpool "},
		{"version with argument", []string{"version", "x"}, 2, ""},

		{"post -h", []string{"post", "-h"}, 0, "-insecure"},
		{"post without URL", []string{"post"}, 2, ""},
		{"post two URLs", []string{"post", url, url}, 2, ""},
		{"post relative URL", []string{"post", "/answer"}, 2, ""},
		{"post ftp URL", []string{"post", "ftp://127.0.0.1/answer"}, 2, ""},
		{"post unknown flag", []string{"post", url, "-nope"}, 2, ""},
		{"post bad -data", []string{"post", url, "-data", "{question"}, 2, ""},
		{"post missing -data file", []string{"post", url, "-data", "@testdata/missing.json"}, 2, ""},
		{"post -c without -n", []string{"post", url, "-c", "3"}, 2, ""},
		{"post negative -n", []string{"post", url, "-n", "-1"}, 2, ""},
		{"post -c 0", []string{"post", url, "-n", "5", "-c", "0"}, 2, ""},
		{"post -timeout 0", []string{"post", url, "-timeout", "0"}, 2, ""},
		{"post -format xml", []string{"post", url, "-format", "xml"}, 2, ""},
		{"post missing config", []string{"post", url, "-config", "testdata/missing.yaml"}, 2, ""},
		{"post bad config", []string{"post", url, "-config", "testdata/bad-config.yaml"}, 2, ""},
		{"post -pause without -n", []string{"post", url, "-pause", "1s"}, 2, ""},
		{"post negative -pause", []string{"post", url, "-n", "5", "-pause", "-1s"}, 2, ""},

		{"doctor -h", []string{"doctor", "-h"}, 0, "-pause"},
		{"doctor without URL", []string{"doctor"}, 2, ""},
		{"doctor relative URL", []string{"doctor", "/answer"}, 2, ""},
		{"doctor -n 0", []string{"doctor", url, "-n", "0"}, 2, ""},
		{"doctor -c 0", []string{"doctor", url, "-c", "0"}, 2, ""},
		{"doctor -format xml", []string{"doctor", url, "-format", "xml"}, 2, ""},
		{"doctor bad config", []string{"doctor", url, "-config", "testdata/bad-config.yaml"}, 2, ""},

		{"serve -h", []string{"serve", "-h"}, 0, "-allow-remote"},
		{"serve argument", []string{"serve", "now"}, 2, ""},
		{"serve unknown proto", []string{"serve", "-proto", "quic"}, 2, ""},
		{"serve all interfaces", []string{"serve", "-addr", ":0"}, 2, ""},
		{"serve unspecified address", []string{"serve", "-addr", "0.0.0.0:0"}, 2, ""},
		{"serve hostname", []string{"serve", "-addr", "example.com:0"}, 2, ""},
		{"serve malformed address", []string{"serve", "-addr", "127.0.0.1"}, 2, ""},
		{"serve negative delay", []string{"serve", "-addr", "127.0.0.1:0", "-delay", "-1s"}, 2, ""},
		{"serve negative max conns", []string{"serve", "-addr", "127.0.0.1:0", "-max-conns", "-1"}, 2, ""},
		{"serve zero shutdown timeout", []string{"serve", "-addr", "127.0.0.1:0", "-shutdown-timeout", "0"}, 2, ""},
		{"serve -config without -upstream", []string{"serve", "-addr", "127.0.0.1:0", "-config", "testdata/max-connections-5.yaml"}, 2, ""},
		{"serve -upstream-token without -upstream", []string{"serve", "-addr", "127.0.0.1:0", "-upstream-token", "t"}, 2, ""},
		{"serve -insecure without -upstream", []string{"serve", "-addr", "127.0.0.1:0", "-insecure"}, 2, ""},
		{"serve relative -upstream", []string{"serve", "-addr", "127.0.0.1:0", "-upstream", "/answer"}, 2, ""},
		{"serve -upstream bad config", []string{"serve", "-addr", "127.0.0.1:0", "-upstream", url, "-config", "testdata/bad-config.yaml"}, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, _, err := runCLI(t, t.Context(), tt.args...)
			if got := exitCode(err); got != tt.wantCode {
				t.Fatalf("exit code: got %d, want %d (err %v)", got, tt.wantCode, err)
			}
			if tt.wantCode == 2 {
				if _, ok := errors.AsType[*usageError](err); !ok {
					t.Errorf("error: got %T %v, want *usageError", err, err)
				}
			}
			if tt.wantStdout == "" && stdout != "" {
				t.Errorf("stdout: got %q, want nothing", stdout)
			}
			if !strings.Contains(stdout, tt.wantStdout) {
				t.Errorf("stdout: got %q, want it to contain %q", stdout, tt.wantStdout)
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, 0},
		{"help", flag.ErrHelp, 0},
		{"usage", usagef("post", "missing URL"), 2},
		{"wrapped usage", fmt.Errorf("context: %w", usagef("post", "missing URL")), 2},
		{"status", &warmpool.StatusError{StatusCode: 503}, 1},
		{"other", errors.New("boom"), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exitCode(tt.err); got != tt.want {
				t.Errorf("exitCode(%v): got %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

func TestReport(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"help", flag.ErrHelp, ""},
		{"usage", usagef("post", "missing URL"), "warmpool post: missing URL\nRun 'warmpool post -h' for usage.\n"},
		{"top-level usage", &usageError{err: errors.New(`unknown command "x"`)}, "warmpool: unknown command \"x\"\nRun 'warmpool -h' for usage.\n"},
		{"other", errors.New("warmpool: boom"), "warmpool: boom\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			report(&b, tt.err)
			if got := b.String(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseInterspersed(t *testing.T) {
	tests := []struct {
		name           string
		args           []string
		wantPositional []string
		wantN          int
	}{
		{"flags first", []string{"-n", "3", "u"}, []string{"u"}, 3},
		{"flags after", []string{"u", "-n", "3"}, []string{"u"}, 3},
		{"flags around", []string{"-n", "2", "u", "v", "-n", "3"}, []string{"u", "v"}, 3},
		{"double dash ends flags", []string{"u", "--", "-n", "3"}, []string{"u", "-n", "3"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := newCommand("test", "", "")
			n := cmd.fs.Int("n", 0, "")
			got, err := cmd.parse(tt.args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.wantPositional) || *n != tt.wantN {
				t.Errorf("got %q and -n %d, want %q and -n %d", got, *n, tt.wantPositional, tt.wantN)
			}
		})
	}
}
