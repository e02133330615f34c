package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warmpool/warmpool/internal/bench"
	benchreport "github.com/warmpool/warmpool/internal/bench/report"
	"github.com/warmpool/warmpool/internal/refserver"
)

// benchCLI runs "warmpool bench args..." in-process.
func benchCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), append([]string{"bench"}, args...), &out, &errOut)
	return out.String(), errOut.String(), err
}

// benchGolden compares got with testdata/name, or rewrites it with -update.
func benchGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; got:\n%s\n(run with -update if the change is intended)", name, got)
	}
}

func TestBenchHelp(t *testing.T) {
	stdout, stderr, err := benchCLI(t, "-h")
	if !errors.Is(err, flag.ErrHelp) || exitCode(err) != 0 {
		t.Fatalf("got %v (exit %d), want flag.ErrHelp (exit 0)", err, exitCode(err))
	}
	if stderr != "" {
		t.Errorf("stderr: got %q, want nothing", stderr)
	}
	benchGolden(t, "bench-help.golden", []byte(stdout))
}

func TestBenchUsageErrors(t *testing.T) {
	// None of these runs anything: each fails while parsing.
	tests := []struct {
		name string
		args []string
	}{
		{"unknown flag", []string{"-nope"}},
		{"two URLs", []string{"http://127.0.0.1:1/a", "http://127.0.0.1:1/b"}},
		{"bad format", []string{"-format", "xml"}},
		{"zero concurrency", []string{"-concurrency", "0"}},
		{"zero rounds", []string{"-rounds", "0"}},
		{"fewer requests than rounds", []string{"-rounds", "3", "-requests", "2"}},
		{"zero duration", []string{"-duration", "0s"}},
		{"negative requests", []string{"-requests", "-1"}},
		{"negative rate", []string{"-rate", "-5"}},
		{"unknown mode", []string{"-modes", "warmpool,fast"}},
		{"unknown proto", []string{"-proto", "quic"}},
		{"rtt not whole ms", []string{"-rtt", "1500us"}},
		{"jitter without rtt", []string{"-jitter", "2ms"}},
		{"bad data", []string{"-data", "{question"}},
		{"missing data file", []string{"-data", "@testdata/no-such-file.json"}},
		{"token without URL", []string{"-token", "x"}},
		{"insecure without URL", []string{"-insecure"}},
		{"server delay with URL", []string{"-server-delay", "1ms", "http://127.0.0.1:1/answer"}},
		{"proto tls with http URL", []string{"-proto", "tls", "http://127.0.0.1:1/answer"}},
		{"relative URL", []string{"/answer"}},
		{"missing config", []string{"-config", "testdata/no-such-config.yaml"}},
		{"unknown token mode", []string{"-token-mode", "sometimes"}},
		{"token fetch without token mode", []string{"-token-fetch", "2ms"}},
		{"zero token fetch", []string{"-token-mode", "cached", "-token-fetch", "0s"}},
		{"negative token fetch", []string{"-token-mode", "per-request", "-token-fetch", "-1ms"}},
		{"token fetch too long", []string{"-token-mode", "per-request", "-token-fetch", "11s"}},
		{"token mode with URL", []string{"-token-mode", "cached", "http://127.0.0.1:1/answer"}},
		{"server idle timeout with URL", []string{"-server-idle-timeout", "1s", "http://127.0.0.1:1/answer"}},
		{"server max requests with URL", []string{"-server-max-requests", "5", "http://127.0.0.1:1/answer"}},
		{"negative server idle timeout", []string{"-server-idle-timeout", "-1s"}},
		{"negative server max requests", []string{"-server-max-requests", "-1"}},
		{"html in a missing directory", []string{"-html", "testdata/no-such-dir/report.html"}},
		{"html is a directory", []string{"-html", "testdata"}},
		{"add backend without backends", []string{"-add-backend-at", "1s"}},
		{"backends with URL", []string{"-backends", "3", "http://127.0.0.1:1/answer"}},
		{"zero backends", []string{"-backends", "0"}},
		{"backends with rtt", []string{"-backends", "3", "-rtt", "10ms"}},
		{"backends with html", []string{"-backends", "3", "-format", "html"}},
		{"backends with a mode it lacks", []string{"-backends", "3", "-modes", "per-request"}},
		{"kill after the duration", []string{"-backends", "3", "-duration", "2s", "-kill-backend-at", "3s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, _, err := benchCLI(t, tt.args...)
			if code := exitCode(err); code != 2 {
				t.Errorf("got %v (exit %d), want a usage error (exit 2)", err, code)
			}
			if stdout != "" {
				t.Errorf("stdout: got %q, want nothing", stdout)
			}
		})
	}
}

func TestBenchEndToEndText(t *testing.T) {
	htmlPath := filepath.Join(t.TempDir(), "report.html")
	stdout, stderr, err := benchCLI(t, "-duration", "300ms", "-concurrency", "4", "-html", htmlPath)
	if err != nil {
		t.Fatalf("got %v; stderr:\n%s", err, stderr)
	}
	if stderr != "" {
		t.Errorf("stderr is not a terminal: want nothing on it, got %q", stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "verdict: over http and tls, warmpool made ") {
		t.Errorf("the report does not end with the overall verdict; last line %q", last)
	}
	for _, want := range []string{
		"\nverdict (http): warmpool made ", "\nverdict (tls): warmpool made ",
		"ratios, higher is better", "p50 speed-up ×per-request",
		"== http: http://127.0.0.1:", "== tls: https://127.0.0.1:",
		"per-request  HTTP/1.1", "tuned        HTTP/1.1", "warmpool     HTTP/1.1", "warmpool-h2  HTTP/2.0",
		"warmpool-h2 skipped: HTTP/2 needs TLS or h2c",
		"warmpool pool: created", "req/s ×per-request",
		"each run 0.3s or unbounded requests, whichever first; 10 runs",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, stdout)
		}
	}
	page, err := os.ReadFile(htmlPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(page, []byte("<!DOCTYPE html>")) || bytes.Count(page, []byte("<polyline ")) != 10 {
		t.Errorf("HTML report: want a document with 10 latency lines, got %d bytes", len(page))
	}
}

func TestBenchEndToEndJSON(t *testing.T) {
	stdout, stderr, err := benchCLI(t, "-proto", "tls", "-duration", "300ms", "-concurrency", "4", "-format", "json")
	if err != nil {
		t.Fatalf("got %v; stderr:\n%s", err, stderr)
	}
	var doc map[string]any
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, stdout)
	}
	if dec.More() {
		t.Error("more than one JSON document on stdout")
	}
	// Every field has a definition in the document itself.
	defs, _ := doc["definitions"].(map[string]any)
	for _, key := range benchreport.DefinitionKeys(doc) {
		if _, ok := defs[key]; !ok {
			t.Errorf("field %q has no entry in definitions", key)
		}
	}
	// The field names and shape are stable; the values depend on the machine.
	skeleton, err := json.MarshalIndent(benchSkeleton("", doc), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	benchGolden(t, "bench-json-skeleton.golden", append(skeleton, '\n'))
}

// benchMasked are the keys whose values vary from run to run even as strings.
var benchMasked = map[string]bool{"started_at": true, "url": true, "machine": true, "notes": true, "error_samples": true,
	"verdict": true, "warmpool_version": true}

// benchSkeleton keeps the keys and structure of a JSON value and the strings
// that do not depend on the run, zeroes the numbers and masks the rest.
func benchSkeleton(key string, v any) any {
	if benchMasked[key] {
		return "<masked>"
	}
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			if key == "hosts" { // keyed by address, whose port varies
				k = "<host:port>"
			}
			out[k] = benchSkeleton(k, e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = benchSkeleton(key, e)
		}
		return out
	case json.Number:
		return 0
	}
	return v
}

func TestBenchTokenModes(t *testing.T) {
	// modes maps each mode to the issuer fetches it must report.
	tests := []struct {
		name  string
		args  []string
		modes map[string]int64
	}{
		{"per-request", []string{"-token-mode", "per-request", "-token-fetch", "1ms", "-requests", "24"},
			map[string]int64{"per-request": 24, "tuned": 24, "warmpool": 24}},
		{"cached", []string{"-token-mode", "cached", "-duration", "200ms"},
			map[string]int64{"per-request": 1, "tuned": 1, "warmpool": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-proto", "http", "-modes", "per-request,tuned,warmpool", "-concurrency", "3", "-format", "json"}, tt.args...)
			stdout, stderr, err := benchCLI(t, args...)
			if err != nil {
				t.Fatalf("got %v; stderr:\n%s", err, stderr)
			}
			var rep struct {
				Settings struct {
					TokenMode    string  `json:"token_mode"`
					TokenFetchMs float64 `json:"token_fetch_ms"`
				} `json:"settings"`
				Protos []struct {
					Modes []struct {
						Mode   string
						OK     int64
						Errors struct{ Total int64 }
						Token  *struct {
							IssuerFetches     int64   `json:"issuer_fetches"`
							FetchUsPerRequest float64 `json:"fetch_us_per_request"`
						}
					}
				}
			}
			if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
				t.Fatal(err)
			}
			if rep.Settings.TokenMode != tt.name {
				t.Errorf("token_mode: got %q, want %q", rep.Settings.TokenMode, tt.name)
			}
			if len(rep.Protos) != 1 || len(rep.Protos[0].Modes) != len(tt.modes) {
				t.Fatalf("want one protocol with %d modes:\n%s", len(tt.modes), stdout)
			}
			for _, m := range rep.Protos[0].Modes {
				if m.OK == 0 || m.Errors.Total != 0 {
					t.Errorf("%s: %d ok, %d errors; want all ok", m.Mode, m.OK, m.Errors.Total)
				}
				if m.Token == nil || m.Token.IssuerFetches != tt.modes[m.Mode] {
					t.Errorf("%s: token %+v, want %d issuer fetches", m.Mode, m.Token, tt.modes[m.Mode])
				}
			}
		})
	}

	stdout, stderr, err := benchCLI(t, "-proto", "http", "-modes", "warmpool", "-concurrency", "2", "-requests", "5", "-token-mode", "per-request", "-token-fetch", "3ms")
	if err != nil {
		t.Fatalf("got %v; stderr:\n%s", err, stderr)
	}
	for _, want := range []string{
		"token mode: per-request: a token fetched before every request, over a new connection, from the in-process issuer, which answers after 3ms",
		"mode      issuer fetches  fetch mean  fetch/req\nwarmpool               5",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("text report lacks %q:\n%s", want, stdout)
		}
	}
}

func TestBenchOutputPathMessages(t *testing.T) {
	// Exact messages, before any run.
	dir := t.TempDir()
	readOnly := filepath.Join(dir, "read-only.html")
	if err := os.WriteFile(readOnly, []byte("old"), 0o444); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path, want string
	}{
		{filepath.Join(dir, "missing", "r.html"), "-html " + filepath.Join(dir, "missing", "r.html") + ": cannot create it in " + filepath.Join(dir, "missing") + ": no such file or directory"},
		{dir, "-html " + dir + ": is a directory; want a file name"},
		{readOnly, "-html " + readOnly + ": cannot write it: permission denied"},
	}
	for _, tt := range tests {
		if tt.path == readOnly && os.Geteuid() == 0 {
			continue // root writes anyway
		}
		_, _, err := benchCLI(t, "-html", tt.path)
		var msg bytes.Buffer
		report(&msg, err)
		if want := "warmpool bench: " + tt.want + "\nRun 'warmpool bench -h' for usage.\n"; msg.String() != want || exitCode(err) != 2 {
			t.Errorf("got %q (exit %d), want %q (exit 2)", msg.String(), exitCode(err), want)
		}
	}
	if b, _ := os.ReadFile(readOnly); string(b) != "old" {
		t.Errorf("the check changed an existing file: %q", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the check left files behind: %v", entries)
	}
}

func TestBenchFormatHTML(t *testing.T) {
	stdout, stderr, err := benchCLI(t, "-proto", "http", "-modes", "per-request,warmpool", "-requests", "10", "-concurrency", "2", "-format", "html")
	if err != nil {
		t.Fatalf("got %v; stderr:\n%s", err, stderr)
	}
	if !strings.HasPrefix(stdout, "<!DOCTYPE html>") || !strings.Contains(stdout, "verdict (http): warmpool made ") {
		t.Errorf("stdout: want an HTML page with the verdict, got:\n%.400s", stdout)
	}

	// With -html, the page goes to the file and nothing to stdout.
	path := filepath.Join(t.TempDir(), "r.html")
	stdout, stderr, err = benchCLI(t, "-proto", "http", "-modes", "warmpool", "-requests", "5", "-concurrency", "1", "-format", "html", "-html", path)
	if err != nil {
		t.Fatalf("got %v; stderr:\n%s", err, stderr)
	}
	if page, _ := os.ReadFile(path); stdout != "" || !bytes.HasPrefix(page, []byte("<!DOCTYPE html>")) {
		t.Errorf("stdout %q and a file of %d bytes; want nothing and the page", stdout, len(page))
	}
}

func TestBench401Hint(t *testing.T) {
	// A server that wants a token the bench does not have: every request
	// gets 401, and the output says which flag gives the token.
	srv, err := refserver.New(refserver.Options{Token: "the-right-token"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	t.Setenv("WARMPOOL_TOKEN", "")
	stdout, _, err := benchCLI(t, "-modes", "per-request,warmpool", "-requests", "6", "-concurrency", "2", srv.URL()+"/answer")
	if exitCode(err) != 1 {
		t.Fatalf("got %v (exit %d), want exit 1", err, exitCode(err))
	}
	hint := "hint: the server answered 401 Unauthorized to 12 of 12 requests: it wants a bearer token: pass it with -token T or $WARMPOOL_TOKEN (-token-mode is for the in-process server, which trusts the in-process issuer)\n"
	if !strings.Contains(stdout, hint) {
		t.Errorf("the report lacks the hint %q:\n%s", hint, stdout)
	}
	if !strings.Contains(err.Error(), hint[:len(hint)-1]) {
		t.Errorf("the error lacks the hint: %v", err)
	}
	for _, want := range []string{"per-request errors: 6 status, status codes 401×6; first: status: warmpool: POST ", "verdict: no verdict: every warmpool request failed (6 of 6): see the hint above.\n"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the report lacks %q:\n%s", want, stdout)
		}
	}
}

func TestBenchServerLimits(t *testing.T) {
	stdout, stderr, err := benchCLI(t, "-proto", "http", "-modes", "tuned,warmpool", "-requests", "30", "-concurrency", "2",
		"-server-max-requests", "5", "-server-idle-timeout", "30s", "-format", "json")
	if err != nil {
		t.Fatalf("got %v; stderr:\n%s", err, stderr)
	}
	var rep bench.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if s := rep.Settings; s.ServerMaxRequestsPerConn != 5 || s.ServerIdleTimeoutS != 30 {
		t.Errorf("settings: got %d requests per connection, %vs idle; want 5, 30s", s.ServerMaxRequestsPerConn, s.ServerIdleTimeoutS)
	}
	for _, m := range rep.Protos[0].Modes {
		if m.Requests != 30 || m.ServerAccepted == nil || *m.ServerAccepted < 6 {
			t.Errorf("%s: %d requests on %v connections; want 30 on at least 6", m.Mode, m.Requests, m.ServerAccepted)
		}
	}
}

func TestBenchInterrupted(t *testing.T) {
	// A context that has ended, as after Ctrl-C: the report is printed,
	// marked partial, and the job fails.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errOut bytes.Buffer
	err := run(ctx, []string{"bench", "-proto", "http", "-modes", "warmpool", "-requests", "5"}, &out, &errOut)
	if exitCode(err) != 1 || err.Error() != "warmpool bench: interrupted after 0 of 1 runs; the report holds the runs that finished (partial)" {
		t.Errorf("got %v (exit %d)", err, exitCode(err))
	}
	if !strings.Contains(out.String(), "PARTIAL REPORT: interrupted after 0 of 1 runs") ||
		!strings.HasSuffix(out.String(), "verdict (partial, interrupted after 0 of 1 runs): no verdict: no run finished.\n") {
		t.Errorf("stdout:\n%s", out.String())
	}
}

func TestBenchIsTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if benchIsTerminal(w) {
		t.Error("a pipe: got terminal")
	}
	if benchIsTerminal(&bytes.Buffer{}) {
		t.Error("a buffer: got terminal")
	}
}
