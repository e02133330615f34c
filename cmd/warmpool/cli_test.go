package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/refserver"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// runCLI calls run in-process and returns what it wrote.
func runCLI(t testing.TB, ctx context.Context, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(ctx, args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func newRefserver(t testing.TB, opts refserver.Options) *refserver.Server {
	t.Helper()
	srv, err := refserver.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

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

func TestPost(t *testing.T) {
	srv := newRefserver(t, refserver.Options{})
	url := srv.URL() + "/answer"

	t.Run("text", func(t *testing.T) {
		stdout, stderr, err := runCLI(t, t.Context(), "post", url, "-data", `{"question":"why?"}`)
		if err != nil {
			t.Fatalf("got %v, want success (stderr %q)", err, stderr)
		}
		for _, want := range []string{"{\n  \"answer\": \"42\",", `"question": "why?"`} {
			if !strings.Contains(stdout, want) {
				t.Errorf("stdout: got %q, want it to contain %q", stdout, want)
			}
		}
	})
	t.Run("json", func(t *testing.T) {
		data := filepath.Join(t.TempDir(), "question.json")
		if err := os.WriteFile(data, []byte(`{"question": [1, 2]}`), 0o600); err != nil {
			t.Fatal(err)
		}
		stdout, _, err := runCLI(t, t.Context(), "post", "-format", "json", "-data", "@"+data, url)
		if err != nil {
			t.Fatal(err)
		}
		var a struct{ Question []int }
		if strings.Count(stdout, "\n") != 1 || json.Unmarshal([]byte(stdout), &a) != nil || len(a.Question) != 2 {
			t.Errorf("stdout: got %q, want the raw answer on one line echoing [1,2]", stdout)
		}
	})
	t.Run("non-2xx", func(t *testing.T) {
		// 500 is not retried, so the test needs no backoff.
		stdout, _, err := runCLI(t, t.Context(), "post", url+"?status=500")
		se, ok := errors.AsType[*warmpool.StatusError](err)
		if !ok || se.StatusCode != http.StatusInternalServerError || exitCode(err) != 1 {
			t.Errorf("got %v (exit %d), want a 500 *warmpool.StatusError (exit 1)", err, exitCode(err))
		}
		if stdout != "" {
			t.Errorf("stdout: got %q, want nothing", stdout)
		}
	})
	t.Run("refused", func(t *testing.T) {
		closed := newRefserver(t, refserver.Options{})
		closed.Close()
		t.Setenv("WARMPOOL_MAX_RETRIES", "0") // a refused dial is retried with backoff otherwise
		_, _, err := runCLI(t, t.Context(), "post", closed.URL()+"/answer")
		if exitCode(err) != 1 {
			t.Errorf("got %v (exit %d), want a connection error (exit 1)", err, exitCode(err))
		}
	})
}

func TestPostTLS(t *testing.T) {
	srv := newRefserver(t, refserver.Options{Proto: "tls"})
	url := srv.URL() + "/answer"

	_, stderr, err := runCLI(t, t.Context(), "post", url, "-insecure")
	if err != nil {
		t.Fatalf("-insecure: got %v, want success", err)
	}
	if !strings.Contains(stderr, "not verifying") {
		t.Errorf("stderr: got %q, want a note that verification is off", stderr)
	}
	_, _, err = runCLI(t, t.Context(), "post", url)
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "needs -insecure") {
		t.Errorf("without -insecure: got %v (exit %d), want a certificate error with a hint (exit 1)", err, exitCode(err))
	}
}

// loadSummary runs "post -n ... -format json" and decodes the summary.
func loadSummary(t *testing.T, args ...string) (summary, string, error) {
	t.Helper()
	stdout, stderr, err := runCLI(t, t.Context(), append([]string{"post", "-format", "json"}, args...)...)
	var s summary
	if jerr := json.Unmarshal([]byte(stdout), &s); jerr != nil {
		t.Fatalf("decode summary %q: %v (run error %v, stderr %q)", stdout, jerr, err, stderr)
	}
	return s, stderr, err
}

func TestPostLoad(t *testing.T) {
	for _, proto := range []string{"http", "tls"} {
		t.Run(proto, func(t *testing.T) {
			srv := newRefserver(t, refserver.Options{Proto: proto})
			// max-connections-5.yaml caps the pool at 5 connections: with the
			// default limit, net/http's dial racing may open a few more than
			// the 5 workers at a cold start (golang/go#66442).
			s, stderr, err := loadSummary(t, srv.URL()+"/answer", "-n", "50", "-c", "5",
				"-insecure", "-config", "testdata/max-connections-5.yaml")
			if err != nil {
				t.Fatalf("got %v, want success (stderr %q)", err, stderr)
			}
			if s.Sent != 50 || s.OK != 50 || s.Errors.total() != 0 || s.Stopped != "" {
				t.Errorf("sent, ok, errors, stopped: got %d, %d, %+v, %q, want 50, 50, none, \"\"", s.Sent, s.OK, s.Errors, s.Stopped)
			}
			if s.Pool.Created < 1 || s.Pool.Created > 5 {
				t.Errorf("connections created: got %d, want 1..5", s.Pool.Created)
			}
			if got := srv.Stats().Accepted; got < 1 || got > 5 {
				t.Errorf("server Accepted: got %d, want 1..5", got)
			}
			if s.Pool.ReuseRate < 0.9 {
				t.Errorf("reuse rate: got %.2f, want ≥ 0.9 (50 requests on ≤ 5 connections)", s.Pool.ReuseRate)
			}
			if s.LatencyP50 <= 0 || s.LatencyP99 < s.LatencyP50 {
				t.Errorf("latency p50, p99: got %v, %v, want 0 < p50 ≤ p99", s.LatencyP50, s.LatencyP99)
			}
			if s.Findings == nil || len(s.Findings) != 0 {
				t.Errorf("findings: got %#v, want an empty array", s.Findings)
			}
		})
	}

	t.Run("findings", func(t *testing.T) {
		// ?close=1 answers "Connection: close", so every request needs a new
		// connection: the unread-bodies rule fires, and the run still succeeds.
		srv := newRefserver(t, refserver.Options{})
		s, stderr, err := loadSummary(t, srv.URL()+"/answer?close=1", "-n", "25", "-c", "1")
		if err != nil {
			t.Fatalf("got %v, want success: findings do not fail post (stderr %q)", err, stderr)
		}
		if len(s.Findings) != 1 || s.Findings[0].Rule != "unread-bodies" || s.Findings[0].Host != srv.Addr() ||
			s.Findings[0].Severity != warmpool.SeverityWarning || s.Findings[0].Fix == "" {
			t.Errorf("findings: got %+v, want one unread-bodies warning for %s with a fix", s.Findings, srv.Addr())
		}
	})

	t.Run("text", func(t *testing.T) {
		srv := newRefserver(t, refserver.Options{})
		stdout, _, err := runCLI(t, t.Context(), "post", srv.URL()+"/answer", "-n", "10", "-c", "2")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"10 sent of 10, 2 workers", "ok            10\n", "latency       p50 ", "connections   ",
			"\ndoctor: no findings (pool healthy)\n"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("stdout: got %q, want it to contain %q", stdout, want)
			}
		}
	})

	t.Run("errors", func(t *testing.T) {
		srv := newRefserver(t, refserver.Options{})
		s, stderr, err := loadSummary(t, srv.URL()+"/answer?status=502", "-n", "6", "-c", "2")
		if exitCode(err) != 1 {
			t.Errorf("got %v (exit %d), want failure (exit 1)", err, exitCode(err))
		}
		if s.Errors.Status != 6 || s.StatusCodes["502"] != 6 || s.OK != 0 {
			t.Errorf("errors, codes, ok: got %+v, %v, %d, want 6 status errors, 502×6, 0 ok", s.Errors, s.StatusCodes, s.OK)
		}
		if !strings.Contains(stderr, "a status error") || !strings.Contains(stderr, "502") {
			t.Errorf("stderr: got %q, want an example status error", stderr)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		srv := newRefserver(t, refserver.Options{Delay: 5 * time.Second})
		start := time.Now()
		s, _, err := loadSummary(t, srv.URL()+"/answer", "-n", "100", "-c", "2", "-timeout", "100ms")
		if exitCode(err) != 1 || s.Stopped == "" || s.Errors.Timeout != 2 || s.Sent != 2 {
			t.Errorf("got %v, stopped %q, errors %+v, sent %d, want exit 1, stopped, 2 timeouts of 2 sent", err, s.Stopped, s.Errors, s.Sent)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("took %v, want about -timeout 100ms", d)
		}
	})
}

func TestPostToken(t *testing.T) {
	const token, wrong = "s3cret-right-token", "wr0ng-token-value"
	srv := newRefserver(t, refserver.Options{Token: token})
	url := srv.URL() + "/answer"
	tests := []struct {
		name   string
		env    string // WARMPOOL_TOKEN
		args   []string
		wantOK bool
	}{
		{"flag", "", []string{"-token", token}, true},
		{"environment", token, nil, true},
		{"flag wins over environment", wrong, []string{"-token", token}, true},
		{"no token", "", nil, false},
		{"wrong token flag", "", []string{"-token", wrong}, false},
		{"wrong token environment", wrong, nil, false},
		{"wrong token load", "", []string{"-token", wrong, "-n", "4", "-c", "2"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("WARMPOOL_TOKEN", tt.env)
			stdout, stderr, err := runCLI(t, t.Context(), append([]string{"post", url}, tt.args...)...)
			if tt.wantOK {
				if err != nil {
					t.Fatalf("got %v, want success", err)
				}
				return
			}
			if exitCode(err) != 1 {
				t.Fatalf("got %v (exit %d), want exit 1", err, exitCode(err))
			}
			var reported bytes.Buffer
			report(&reported, err)
			all := reported.String() + stdout + stderr
			if !strings.Contains(all, "401") {
				t.Errorf("output: got %q, want status 401", all)
			}
			for _, secret := range []string{token, wrong} {
				if strings.Contains(all, secret) {
					t.Errorf("output contains the token %q: %q", secret, all)
				}
			}
		})
	}
}

// syncBuffer is a bytes.Buffer that one goroutine writes while another
// reads, signalling every write.
type syncBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{}
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{wrote: make(chan struct{}, 1)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	n, err := s.b.Write(p)
	s.mu.Unlock()
	select {
	case s.wrote <- struct{}{}:
	default:
	}
	return n, err
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until re matches the buffer and returns its first submatch.
func (s *syncBuffer) waitFor(t testing.TB, re *regexp.Regexp, done <-chan error) string {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		if m := re.FindStringSubmatch(s.String()); m != nil {
			return m[1]
		}
		select {
		case <-s.wrote:
		case err := <-done:
			t.Fatalf("serve returned %v before printing %v; stderr %q", err, re, s.String())
		case <-timeout:
			t.Fatalf("no %v in stderr after 5s: %q", re, s.String())
		}
	}
}

var servingOn = regexp.MustCompile(`serving on (\S+)`)

func TestServe(t *testing.T) {
	for _, proto := range []string{"http", "tls", "h2c"} {
		t.Run(proto, func(t *testing.T) {
			t.Setenv("WARMPOOL_TOKEN", "")
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var stdout bytes.Buffer
			stderr := newSyncBuffer()
			done := make(chan error, 1)
			go func() { done <- run(ctx, []string{"serve", "-addr", "127.0.0.1:0", "-proto", proto}, &stdout, stderr) }()
			base := stderr.waitFor(t, servingOn, done)

			// Without keep-alive the client leaves no connection open that
			// it never used: http.Server.Shutdown waits 5s before it treats
			// such a connection (still StateNew) as idle.
			tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}
			hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
			get := func(path string) (int, string) {
				t.Helper()
				resp, err := hc.Get(base + path)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				return resp.StatusCode, string(b)
			}
			if code, body := get("/healthz"); code != http.StatusOK || body != "ok" {
				t.Fatalf("GET /healthz: got %d %q, want 200 \"ok\"", code, body)
			}
			// Without -upstream, /metrics holds the server's counts only.
			if code, body := get("/metrics"); code != http.StatusOK || !strings.Contains(body, "\nwarmpool_server_requests_total 2\n") ||
				strings.Contains(body, "warmpool_connections_created_total") {
				t.Errorf("GET /metrics: got %d %q, want 200 with 2 server requests and no client metrics", code, body)
			}

			// A slow request in flight when the signal comes must finish.
			slow := make(chan error, 1)
			go func() {
				resp, err := hc.Post(base+"/answer?delay=300ms", "application/json", strings.NewReader(`{}`))
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				slow <- err
			}()
			waitInFlight(t, get)
			cancel()

			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve: got %v, want nil after a graceful shutdown", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("serve did not return within 10s of the cancellation")
			}
			if err := <-slow; err != nil {
				t.Errorf("request in flight during shutdown: got %v, want 200", err)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout: got %q, want nothing", stdout.String())
			}
			out := stderr.String()
			if !strings.Contains(out, "shutting down") {
				t.Errorf("stderr: got %q, want it to report the shutdown", out)
			}
			if isTLS := proto == "tls"; isTLS != strings.Contains(out, "self-signed") {
				t.Errorf("stderr: got %q, want a self-signed certificate note only for TLS", out)
			}
		})
	}
}

// waitInFlight polls /stats until a request besides its own is in flight.
func waitInFlight(t *testing.T, get func(string) (int, string)) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		_, body := get("/stats")
		var st refserver.Stats
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatalf("GET /stats: %v: %q", err, body)
		}
		if st.InFlight >= 2 {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("the slow request never arrived")
}

func TestSummaryGolden(t *testing.T) {
	s := summary{
		URL:               "http://127.0.0.1:8080/answer",
		Requested:         200,
		Workers:           8,
		Sent:              200,
		OK:                197,
		Errors:            errorCounts{Status: 2, PoolTimeout: 1},
		StatusCodes:       map[string]int{"503": 1, "429": 1},
		Seconds:           0.25,
		RequestsPerSecond: 800,
		LatencyP50:        612345 * time.Nanosecond,
		LatencyP99:        2345678 * time.Nanosecond,
		Pool: poolSummary{
			Created: 8, ReuseRate: 0.96, Open: 8, Idle: 8, PoolTimeouts: 1,
			Requests: 200, Reused: 192, PeakInFlight: 8, Closed: 3,
			ClosedBy: map[string]int64{"server": 2, "unused": 1}, DialsAvoided: 2, DialFailures: 0,
			Waits: 4, WaitSeconds: 0.0123, Retries: 2, RetryBudgetRefusals: 3,
		},
		// Findings as warmpool.Diagnose words them; a client-wide one has no host.
		Findings: []finding{{
			Rule: "server-closed-idle", Severity: warmpool.SeverityWarning, Host: "127.0.0.1:8080", Value: 2,
			Message: "the server closed 2 idle connections before keepalive_expiry (30s) ran out, making 1 % of requests open a new one: its idle timeout is shorter, and a request sent as it closes one can fail",
			Fix:     "lower keepalive_expiry below the server's idle timeout (or raise the server's)",
		}, {
			Rule: "retry-budget", Severity: warmpool.SeverityError, Value: 3,
			Message: "the retry budget refused 3 retries (2 made): so many requests failed that retries would exceed retry_budget_percent (20 %) of requests",
			Fix:     "find why the backend fails; the budget is holding retries back so as not to add to its load",
		}},
	}
	healthy := s
	healthy.OK, healthy.Errors, healthy.StatusCodes, healthy.Findings = 200, errorCounts{}, nil, nil
	healthy.Pool.PoolTimeouts, healthy.Pool.Retries, healthy.Pool.RetryBudgetRefusals = 0, 0, 0
	healthy.Pool.Closed, healthy.Pool.ClosedBy = 1, map[string]int64{"unused": 1}
	tests := []struct {
		golden     string
		s          summary
		format     string
		poolDetail bool
	}{
		{"summary.text.golden", s, "text", false},
		{"summary.json.golden", s, "json", false},
		{"summary-healthy.json.golden", healthy, "json", false},
		{"doctor.text.golden", s, "text", true},
		{"doctor-healthy.text.golden", healthy, "text", true},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			var b bytes.Buffer
			if err := writeSummary(&b, tt.s, tt.format, tt.poolDetail); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tt.golden)
			if *update {
				if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got := b.String(); got != string(want) {
				t.Errorf("got:\n%s\nwant (%s):\n%s", got, golden, want)
			}
		})
	}
}

func TestPercentiles(t *testing.T) {
	ds := func(ms ...int) []time.Duration {
		var out []time.Duration
		for _, m := range ms {
			out = append(out, time.Duration(m)*time.Millisecond)
		}
		return out
	}
	many := make([]int, 100)
	for i := range many {
		many[i] = 100 - i // 100..1, unsorted
	}
	tests := []struct {
		name     string
		in       []time.Duration
		p50, p99 time.Duration
	}{
		{"none", nil, 0, 0},
		{"one", ds(7), 7 * time.Millisecond, 7 * time.Millisecond},
		{"two", ds(9, 1), time.Millisecond, 9 * time.Millisecond},
		{"hundred", ds(many...), 50 * time.Millisecond, 99 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p50, p99 := percentiles(tt.in)
			if p50 != tt.p50 || p99 != tt.p99 {
				t.Errorf("got p50 %v p99 %v, want %v %v", p50, p99, tt.p50, tt.p99)
			}
		})
	}
}

func TestDoctor(t *testing.T) {
	t.Run("healthy", func(t *testing.T) {
		srv := newRefserver(t, refserver.Options{})
		stdout, stderr, err := runCLI(t, t.Context(), "doctor", srv.URL()+"/answer", "-n", "100", "-c", "4")
		if err != nil {
			t.Fatalf("got %v, want success (stderr %q)", err, stderr)
		}
		for _, want := range []string{"100 sent of 100, 4 workers", "\nreuse         ", "\nclosed        ", "\ndoctor: no findings (pool healthy)\n"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("stdout: got %q, want it to contain %q", stdout, want)
			}
		}
	})

	t.Run("server closes idle connections", func(t *testing.T) {
		// Each worker pauses 80ms between its requests; the server closes
		// connections idle for 30ms, long before keepalive_expiry (30s).
		srv := newRefserver(t, refserver.Options{IdleTimeout: 30 * time.Millisecond})
		stdout, stderr, err := runCLI(t, t.Context(), "doctor", srv.URL()+"/answer", "-n", "24", "-c", "4", "-pause", "80ms")
		if err != nil {
			t.Fatalf("got %v, want success: a warning does not fail doctor (stderr %q)", err, stderr)
		}
		for _, want := range []string{
			"\ndoctor: 1 finding\nwarning server-closed-idle " + srv.Addr() + "\n",
			"idle connections before keepalive_expiry (30s) ran out",
			"\n  fix: lower keepalive_expiry below the server's idle timeout",
		} {
			if !strings.Contains(stdout, want) {
				t.Errorf("stdout: got %q, want it to contain %q", stdout, want)
			}
		}
		if !regexp.MustCompile(`\nclosed        \d+ \(server \d+`).MatchString(stdout) {
			t.Errorf("stdout: got %q, want connections closed by the server", stdout)
		}
	})

	t.Run("error finding", func(t *testing.T) {
		closed := newRefserver(t, refserver.Options{})
		closed.Close()
		t.Setenv("WARMPOOL_MAX_RETRIES", "0")
		stdout, _, err := runCLI(t, t.Context(), "doctor", closed.URL()+"/answer", "-n", "3", "-c", "1", "-format", "json")
		if exitCode(err) != 1 || !strings.Contains(err.Error(), "1 finding of severity error") {
			t.Errorf("got %v (exit %d), want exit 1 for an error finding", err, exitCode(err))
		}
		var s summary
		if err := json.Unmarshal([]byte(stdout), &s); err != nil {
			t.Fatalf("decode %q: %v", stdout, err)
		}
		if len(s.Findings) != 1 || s.Findings[0].Rule != "dial-failures" || s.Findings[0].Severity != warmpool.SeverityError ||
			s.Findings[0].Host != closed.Addr() || s.Findings[0].Value != 3 {
			t.Errorf("findings: got %+v, want one dial-failures error for %s, value 3", s.Findings, closed.Addr())
		}
		if s.Pool.DialFailures != 3 || s.Errors.Other != 3 {
			t.Errorf("dial failures, other errors: got %d, %d, want 3, 3", s.Pool.DialFailures, s.Errors.Other)
		}
	})
}

// startServe runs "serve" in-process until the test ends and returns its
// URL, its stderr, and a function that stops it and returns its error.
func startServe(t *testing.T, args ...string) (base string, stderr *syncBuffer, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	stderr = newSyncBuffer()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "-addr", "127.0.0.1:0"}, args...), io.Discard, stderr)
	}()
	stopped := false
	var err error
	stop = func() error {
		t.Helper()
		if stopped {
			return err
		}
		stopped = true
		cancel()
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("serve did not return within 10s of the cancellation")
		}
		return err
	}
	t.Cleanup(func() { stop() })
	return stderr.waitFor(t, servingOn, done), stderr, stop
}

// noKeepAlive is a client that leaves no idle connection to slow serve's
// graceful shutdown down (see TestServe).
var noKeepAlive = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}

func httpDo(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := noKeepAlive.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestServeUpstream(t *testing.T) {
	var mu sync.Mutex
	var questions []string
	upstream := newRefserver(t, refserver.Options{Upstream: func(_ context.Context, q json.RawMessage) error {
		mu.Lock()
		defer mu.Unlock()
		questions = append(questions, string(q))
		return nil
	}})
	t.Setenv("WARMPOOL_UPSTREAM_TOKEN", "")
	base, stderr, stop := startServe(t, "-upstream", upstream.URL()+"/answer")

	const calls = 5
	for i := range calls {
		code, body := httpDo(t, http.MethodPost, base+"/answer", fmt.Sprintf(`{"question":"q%d"}`, i))
		if code != http.StatusOK || !strings.Contains(body, fmt.Sprintf(`"question":"q%d"`, i)) {
			t.Fatalf("POST /answer %d: got %d %q, want 200 with its question", i, code, body)
		}
	}
	// A failing upstream fails /answer with 502.
	upstream.SetStatus(http.StatusInternalServerError)
	if code, body := httpDo(t, http.MethodPost, base+"/answer", `{"question":"fails"}`); code != http.StatusBadGateway || !strings.Contains(body, "500") {
		t.Errorf("POST /answer with the upstream failing: got %d %q, want 502 naming the upstream's 500", code, body)
	}
	upstream.SetStatus(0)

	code, metrics := httpDo(t, http.MethodGet, base+"/metrics", "")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: got %d %q, want 200", code, metrics)
	}
	st := upstream.Stats()
	if st.Executions != calls || st.Accepted < 1 || st.Accepted > 2 {
		t.Errorf("upstream executions, connections: got %d, %d, want %d on 1 or 2", st.Executions, st.Accepted, calls)
	}
	_, port, _ := strings.Cut(upstream.Addr(), ":")
	server := fmt.Sprintf(`server_address="127.0.0.1",server_port=%q`, port)
	for _, want := range []string{
		fmt.Sprintf("\nwarmpool_server_requests_total %d\n", calls+2),
		fmt.Sprintf("\nwarmpool_connections_created_total{%s} %d\n", server, st.Accepted),
		fmt.Sprintf("\nwarmpool_attempts_total{%s} %d\n", server, calls+1),
		fmt.Sprintf("\nwarmpool_responses_total{http_response_status_code=\"200\",%s} %d\n", server, calls),
		fmt.Sprintf("\nwarmpool_responses_total{http_response_status_code=\"500\",%s} 1\n", server),
		fmt.Sprintf("\nwarmpool_connections_closed_total{%s,warmpool_close_reason=\"unused\"} 0\n", server),
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("GET /metrics lacks %q:\n%s", want, metrics)
		}
	}
	// The scrape's own connection is open; those of the earlier requests may
	// not have been seen closing yet.
	if m := regexp.MustCompile(`\nwarmpool_server_open_connections (\d+)\n`).FindStringSubmatch(metrics); m == nil || m[1] == "0" {
		t.Errorf("GET /metrics: got open connections %q, want at least 1:\n%s", m, metrics)
	}
	mu.Lock()
	got := strings.Join(questions, " ")
	mu.Unlock()
	if want := `"q0" "q1" "q2" "q3" "q4"`; got != want {
		t.Errorf("questions the upstream got: %s, want %s", got, want)
	}

	if err := stop(); err != nil {
		t.Errorf("serve: got %v, want nil", err)
	}
	if want := fmt.Sprintf("warmpool serve: upstream: %d requests on %d connections", calls+1, st.Accepted); !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr: got %q, want it to contain %q", stderr.String(), want)
	}
}
