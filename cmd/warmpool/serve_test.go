package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/refserver"
)

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
		fmt.Sprintf("\nwarmpool_connections_created_total{endpoint=\"\",%s} %d\n", server, st.Accepted),
		fmt.Sprintf("\nwarmpool_attempts_total{endpoint=\"\",%s} %d\n", server, calls+1),
		fmt.Sprintf("\nwarmpool_responses_total{http_response_status_code=\"200\",%s} %d\n", server, calls),
		fmt.Sprintf("\nwarmpool_responses_total{http_response_status_code=\"500\",%s} 1\n", server),
		fmt.Sprintf("\nwarmpool_connections_closed_total{endpoint=\"\",%s,warmpool_close_reason=\"unused\"} 0\n", server),
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
