package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/refserver"
)

// TestServePortInUse checks the whole message a user sees when the port is
// taken, and its exit status.
func TestServePortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()

	_, _, err = runCLI(t, t.Context(), "serve", "-addr", addr)
	if err == nil {
		t.Fatal("serve on a busy port: got nil error")
	}
	var out bytes.Buffer
	report(&out, err)
	want := "warmpool serve: " + addr + " is already in use; pick another with -addr 127.0.0.1:0 or stop the other process\n"
	if out.String() != want {
		t.Errorf("report:\ngot  %q\nwant %q", out.String(), want)
	}
	if code := exitCode(err); code != 1 {
		t.Errorf("exit code: got %d, want 1", code)
	}
}

func TestServeLimitFlagsUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"reset alone", []string{"-reset"}, "-reset needs -idle-timeout or -max-requests-per-conn"},
		{"keepalive header alone", []string{"-keepalive-header"}, "-keepalive-header needs -idle-timeout"},
		{"keepalive header with max requests", []string{"-keepalive-header", "-max-requests-per-conn", "5"}, "-keepalive-header needs -idle-timeout"},
		{"negative max requests", []string{"-max-requests-per-conn", "-1"}, "-max-requests-per-conn must not be negative"},
		{"negative idle timeout", []string{"-idle-timeout", "-1s"}, "-idle-timeout must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"serve", "-addr", "127.0.0.1:0"}, tt.args...)
			_, _, err := runCLI(t, t.Context(), args...)
			if code := exitCode(err); code != 2 {
				t.Fatalf("exit code: got %d (%v), want 2", code, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error: got %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestServeConnectionLimits runs serve with every connection-limit flag and
// checks the answers a keep-alive client gets, /stats, and the exit report.
func TestServeConnectionLimits(t *testing.T) {
	base, stderr, stop := startServe(t, "-idle-timeout", "1500ms", "-keepalive-header", "-max-requests-per-conn", "3", "-reset")
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	var closes []bool
	for i := range 4 {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/answer", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		closes = append(closes, resp.Close)
		if ka := resp.Header.Get("Keep-Alive"); !resp.Close && ka != "timeout=1" {
			t.Errorf("request %d: Keep-Alive: got %q, want timeout=1", i+1, ka)
		}
	}
	if want := []bool{false, false, true, false}; !slices.Equal(closes, want) {
		t.Errorf("answers closing the connection: got %v, want %v", closes, want)
	}

	deadline := time.Now().Add(5 * time.Second)
	var st refserver.Stats
	for {
		code, body := httpDo(t, http.MethodGet, base+"/stats", "")
		if code != http.StatusOK {
			t.Fatalf("GET /stats: got %d", code)
		}
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatal(err)
		}
		if st.ClosedMaxRequests == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if st.ClosedMaxRequests != 1 || st.ClosedReset != 1 || st.IdleTimeoutMS != 1500 || st.MaxRequestsPerConn != 3 || st.ConnRequestsMax != 3 {
		t.Errorf("/stats closed_max_requests, closed_reset, idle_timeout_ms, max_requests_per_conn, conn_requests_max: got %d, %d, %d, %d, %d, want 1, 1, 1500, 3, 3",
			st.ClosedMaxRequests, st.ClosedReset, st.IdleTimeoutMS, st.MaxRequestsPerConn, st.ConnRequestsMax)
	}

	if err := stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
	if want := "and 1 at max requests (0 GOAWAYs, 1 with an RST)"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr: got %q, want it to contain %q", stderr.String(), want)
	}
}
