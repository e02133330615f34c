package warmpool

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/refserver"
)

// idleBursts runs bursts of n parallel PostJSON calls, sleeping gap after
// each, and returns the failures of each burst and the first error.
func idleBursts(t testing.TB, c *Client, url string, bursts, n int, gap time.Duration) (failed []int, first error) {
	t.Helper()
	failed = make([]int, bursts)
	for b := range bursts {
		ok, _, _, err := countErrs(load(t, n, n, func(int) error { return post(c, url) }), nil)
		failed[b] = n - ok
		if first == nil {
			first = err
		}
		if b < bursts-1 {
			time.Sleep(gap)
		}
	}
	return failed, first
}

// TestIdleTimeoutLearnedFromClose: a server that closes connections idle
// for 300ms, called in bursts 300ms apart by a client whose
// keepalive_expiry is 30s. After the first idle close warmpool knows the
// timeout and closes idle connections before the server does: no call
// fails after the first burst.
func TestIdleTimeoutLearnedFromClose(t *testing.T) {
	t.Parallel() // it waits on the server's idle timeout, not on the CPU
	const (
		idle    = 300 * time.Millisecond
		bursts  = 20
		callers = 16
	)
	for _, proto := range []string{"http", "tls"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel() // 20 bursts 300ms apart: about 7s each
			srv := startServer(t, refserver.Options{Proto: proto, IdleTimeout: idle})
			c := newClient(t, srv, DefaultConfig(), WithLogger(slog.New(slog.DiscardHandler)))
			failed, first := idleBursts(t, c, srv.URL()+"/answer", bursts, callers, idle)
			// The first burst opens the connections; the second, sent as
			// the server times them out, is the first that can meet an
			// idle close (nothing could be learned before it) and may
			// lose a plain POST to the race; from then on, none.
			var after int
			for _, n := range failed[2:] {
				after += n
			}
			if after != 0 {
				t.Errorf("failures per burst: got %v (first error: %v), want 0 after the first burst that met an idle close", failed, first)
			}
			st, ss := c.Stats(), srv.Stats()
			t.Logf("failures per burst %v; client: created %d, learned %s from %q, closed by %+v; server: accepted %d, closed idle %d",
				failed, st.Created, st.LearnedIdleTimeout, st.LearnedIdleTimeoutFrom, st.ClosedBy, ss.Accepted, ss.ClosedIdle)
			// A close is seen a little after it happened, later still on a
			// loaded machine; the margin (250ms here) covers that.
			if got := st.LearnedIdleTimeout; got <= 100*time.Millisecond || got > idle+200*time.Millisecond {
				t.Errorf("LearnedIdleTimeout: got %s, want in (100ms, %s]", got, idle+200*time.Millisecond)
			}
			if got := st.LearnedIdleTimeoutFrom; got != "server close" {
				t.Errorf("LearnedIdleTimeoutFrom: got %q, want %q", got, "server close")
			}
		})
	}
}

// TestIdleTimeoutLearnedFromHeader: a server that announces its idle
// timeout in a Keep-Alive header is never caught out, not even once.
func TestIdleTimeoutLearnedFromHeader(t *testing.T) {
	t.Parallel() // it waits on the server's idle timeout, not on the CPU
	const (
		idle    = time.Second
		bursts  = 5
		callers = 8
	)
	srv := startServer(t, refserver.Options{IdleTimeout: idle, KeepAliveTimeoutHeader: true})
	c := newClient(t, srv, DefaultConfig(), WithLogger(slog.New(slog.DiscardHandler)))
	failed, first := idleBursts(t, c, srv.URL()+"/answer", bursts, callers, idle)
	for _, n := range failed {
		if n != 0 {
			t.Errorf("failures per burst: got %v (first error: %v), want 0 from the first burst on", failed, first)
			break
		}
	}
	st := c.Stats()
	if st.LearnedIdleTimeout != idle {
		t.Errorf("LearnedIdleTimeout: got %s, want %s", st.LearnedIdleTimeout, idle)
	}
	if got := st.LearnedIdleTimeoutFrom; got != "keep-alive header" {
		t.Errorf("LearnedIdleTimeoutFrom: got %q, want %q", got, "keep-alive header")
	}
	t.Logf("client: created %d, closed by %+v; server: accepted %d, closed idle %d",
		st.Created, st.ClosedBy, srv.Stats().Accepted, srv.Stats().ClosedIdle)
}

func TestIdleCloseError(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     *IdleCloseError
		want    []string
		wantNot []string
	}{
		{
			name: "POST",
			err:  &IdleCloseError{Method: "POST", URL: "http://backend/answer", Idle: 4500 * time.Millisecond, Err: io.EOF},
			want: []string{"may have reached the server", "not retried",
				"POST is not idempotent", "4.5s", "keepalive_expiry", "Idempotency-Key", "EOF"},
			// net/http's *url.Error, which wraps it, names the request.
			wantNot: []string{"retries did not get through", "http://backend/answer"},
		},
		{
			name:    "GET",
			err:     &IdleCloseError{Method: "GET", URL: "http://backend/x", Idle: 5 * time.Second, Idempotent: true, Err: io.EOF},
			want:    []string{"5s", "retries did not get through", "keepalive_expiry", "EOF"},
			wantNot: []string{"not idempotent", "may have reached the server", "http://backend/x"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := tc.err.Error()
			for _, s := range tc.want {
				if !strings.Contains(msg, s) {
					t.Errorf("Error() = %q: want it to contain %q", msg, s)
				}
			}
			for _, s := range tc.wantNot {
				if strings.Contains(msg, s) {
					t.Errorf("Error() = %q: want it not to contain %q", msg, s)
				}
			}
			wrapped := fmt.Errorf("calling backend: %w", tc.err)
			var ice *IdleCloseError
			if !errors.As(wrapped, &ice) || ice != tc.err {
				t.Errorf("errors.As(wrapped, *IdleCloseError): got %v, want the error itself", ice)
			}
			if !errors.Is(wrapped, io.EOF) {
				t.Errorf("errors.Is(err, io.EOF): got false, want true through Unwrap")
			}
			if got := ErrorKind(wrapped); got != "idle_race" {
				t.Errorf("ErrorKind: got %q, want %q", got, "idle_race")
			}
		})
	}

	t.Run("live", func(t *testing.T) {
		// The live case needs a client that does not learn the server's
		// idle timeout, which would prevent the race it provokes.
		cfg := DefaultConfig()
		cfg.DisableIdleLearning = true
		const idle = 200 * time.Millisecond
		srv := startServer(t, refserver.Options{IdleTimeout: idle})
		c := newClient(t, srv, cfg, WithLogger(slog.New(slog.DiscardHandler)))
		for try := range 30 {
			err := post(c, srv.URL()+"/answer")
			if err == nil {
				time.Sleep(idle)
				continue
			}
			var ice *IdleCloseError
			if !errors.As(err, &ice) {
				t.Fatalf("try %d: got %v (kind %q), want an *IdleCloseError", try, err, ErrorKind(err))
			}
			return
		}
		t.Fatal("30 POSTs 200ms apart to a server closing connections idle for 200ms: none failed, want one *IdleCloseError")
	})
}
