package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/doctor"
	"github.com/warmpool/warmpool/internal/refserver"
)

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
			s.Findings[0].Severity != doctor.SeverityWarning || s.Findings[0].Fix == "" {
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
		if s.Errors["status"] != 6 || s.StatusCodes["502"] != 6 || s.OK != 0 {
			t.Errorf("errors, codes, ok: got %+v, %v, %d, want 6 status errors, 502×6, 0 ok", s.Errors, s.StatusCodes, s.OK)
		}
		if !strings.Contains(stderr, "warmpool post: 6 requests failed with kind status; the first: POST ") || !strings.Contains(stderr, "502") {
			t.Errorf("stderr: got %q, want an example status error", stderr)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		srv := newRefserver(t, refserver.Options{Delay: 5 * time.Second})
		start := time.Now()
		s, _, err := loadSummary(t, srv.URL()+"/answer", "-n", "100", "-c", "2", "-timeout", "100ms")
		if exitCode(err) != 1 || s.Stopped == "" || s.Errors["timeout"] != 2 || s.Sent != 2 {
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

func TestSummaryGolden(t *testing.T) {
	s := summary{
		URL:               "http://127.0.0.1:8080/answer",
		Requested:         200,
		Workers:           8,
		Sent:              200,
		OK:                197,
		Errors:            errorsOf(map[string]int{"status": 2, "pool_timeout": 1}),
		StatusCodes:       map[string]int{"503": 1, "429": 1},
		Seconds:           0.25,
		RequestsPerSecond: 800,
		LatencyP50:        612345 * time.Nanosecond,
		LatencyP99:        2345678 * time.Nanosecond,
		Pool: poolSummary{Stats: oneHost("127.0.0.1:8080", warmpool.HostStats{
			Created: 8, Open: 8, Idle: 8, PoolTimeouts: 1, Requests: 200, Reused: 192, PeakInFlight: 8,
			Closed: 3, ClosedBy: warmpool.CloseReasons{Server: 2, Unused: 1}, DialsAvoided: 2,
			Waits: 4, WaitTime: 12300 * time.Microsecond,
		}), ReuseRate: 0.96},
		// Findings as doctor.Diagnose words them; a client-wide one has no host.
		Findings: []finding{{
			Rule: "server-closed-idle", Severity: doctor.SeverityWarning, Host: "127.0.0.1:8080", Value: 2,
			Message: "the server closed 2 idle connections before keepalive_expiry (30s) ran out, making 1 % of requests open a new one: its idle timeout is shorter, and a request sent as it closes one can fail",
			Fix:     "lower keepalive_expiry below the server's idle timeout (or raise the server's)",
		}, {
			Rule: "retry-budget", Severity: doctor.SeverityError, Value: 3,
			Message: "the retry budget refused 3 retries (2 made): so many requests failed that retries would exceed retry_budget_percent (20 %) of requests",
			Fix:     "find why the backend fails; the budget is holding retries back so as not to add to its load",
		}},
	}
	healthy := s
	healthy.OK, healthy.Errors, healthy.StatusCodes, healthy.Findings = 200, newErrorCounts(), nil, nil
	healthy.Pool.Stats = oneHost("127.0.0.1:8080", warmpool.HostStats{
		Created: 8, Open: 8, Idle: 8, Requests: 200, Reused: 192, PeakInFlight: 8,
		Closed: 1, ClosedBy: warmpool.CloseReasons{Unused: 1}, DialsAvoided: 2,
		Waits: 4, WaitTime: 12300 * time.Microsecond,
	})
	healthy.Pool.CallsFailed, healthy.Pool.Retries, healthy.Pool.BudgetRefusals = 0, 0, 0
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

// oneHost is the Stats of a client that called one host, addr, with h as
// its figures, 2 retries and 3 refused by the budget.
func oneHost(addr string, h warmpool.HostStats) warmpool.Stats {
	perHost := h
	perHost.Protocol = "HTTP/1.1"
	return warmpool.Stats{HostStats: h, Hosts: map[string]warmpool.HostStats{addr: perHost},
		Calls: h.Requests, CallsFailed: 3, Retries: 2, BudgetRefusals: 3}
}

// errorsOf is a summary's error counts with n of each kind given.
func errorsOf(n map[string]int) errorCounts {
	e := newErrorCounts()
	e.merge(n)
	return e
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
