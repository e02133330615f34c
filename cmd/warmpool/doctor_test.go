package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/warmpool/warmpool/doctor"
	"github.com/warmpool/warmpool/internal/refserver"
)

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
		// One worker pauses 150ms between its 20 requests (the doctor's
		// minimum); the server closes connections idle for 30ms, long
		// before keepalive_expiry (30s). The client must see each close
		// before its next POST, which is not retried: one worker, so that
		// no other reuses a connection just as the server closes it, and
		// a gap wide enough for a loaded machine.
		srv := newRefserver(t, refserver.Options{IdleTimeout: 30 * time.Millisecond})
		// Learning the idle timeout would add a finding of its own once a
		// loaded machine notices a close late enough (over 100ms) to learn.
		t.Setenv("WARMPOOL_LEARN_IDLE_TIMEOUT", "false")
		stdout, stderr, err := runCLI(t, t.Context(), "doctor", srv.URL()+"/answer", "-n", "20", "-c", "1", "-pause", "150ms")
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
		if len(s.Findings) != 1 || s.Findings[0].Rule != "dial-failures" || s.Findings[0].Severity != doctor.SeverityError ||
			s.Findings[0].Host != closed.Addr() || s.Findings[0].Value != 3 {
			t.Errorf("findings: got %+v, want one dial-failures error for %s, value 3", s.Findings, closed.Addr())
		}
		if s.Pool.DialFailures.Refused != 3 || s.Errors["refused"] != 3 {
			t.Errorf("refused dials, refused errors: got %d, %d, want 3, 3", s.Pool.DialFailures.Refused, s.Errors["refused"])
		}
	})
}
