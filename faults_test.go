package warmpool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/refserver"
)

// TestFaults runs the client through the faults of issue #4, each under a
// bounded load, and checks counts: calls made, succeeded, failed by kind,
// and what the server executed. Each scenario logs a one-line summary.
// Wall-clock bounds are generous; where a bound is the point of the
// scenario (timeouts), the allowance for a loaded machine is named.
func TestFaults(t *testing.T) {
	t.Run("01_stale_pooled_connection", faultStaleConnection)
	t.Run("02_network_interruption", faultNetworkInterruption)
	t.Run("03_backend_restart", faultBackendRestart)
	t.Run("04_black_hole", faultBlackHole)
	t.Run("05_slow_server", faultSlowServer)
	t.Run("06_reset_mid_response", faultResetMidResponse)
	t.Run("07_server_connection_limit", faultServerConnLimit)
	t.Run("08_retry_storm", faultRetryStorm)
	t.Run("09_retry_after", faultRetryAfter)
	t.Run("10_long_running_connections", faultLongRunning)
	t.Run("11_overload", faultOverload)
}

// faultSchedSlack is what a bound on elapsed time allows on top of the
// timeout under test, for a loaded 2-core machine running -race: timers
// firing late, goroutines waiting to be scheduled. Under
// scripts/ci-under-load timers fired up to 300ms late; a call that hangs
// or is retried against the rules still takes far longer.
const faultSchedSlack = 500 * time.Millisecond

// faultCall is one call made under load.
type faultCall struct {
	start, end time.Time
	err        error
}

func (c faultCall) dur() time.Duration { return c.end.Sub(c.start) }

// faultCalls times the calls of a load: at most n calls of fn from workers
// goroutines (load), each followed by pause() (nil: none), until d has
// passed since the start or stop is closed (nil: never). It returns the
// calls made.
func faultCalls(t testing.TB, workers, n int, d time.Duration, pause func() time.Duration, stop <-chan struct{}, fn func(i int) error) []faultCall {
	t.Helper()
	timed := make([]faultCall, n)
	made := make([]bool, n)
	load(t, n, workers, until(d, stop, func(i int) error {
		start := time.Now()
		err := fn(i)
		timed[i], made[i] = faultCall{start: start, end: time.Now(), err: err}, true
		if pause != nil {
			time.Sleep(pause())
		}
		return err
	}))
	var calls []faultCall
	for i, c := range timed {
		if made[i] {
			calls = append(calls, c)
		}
	}
	return calls
}

// faultPause returns a pause drawn uniformly from [lo, hi].
func faultPause(lo, hi time.Duration) func() time.Duration {
	return func() time.Duration { return lo + rand.N(hi-lo+1) }
}

// faultKind names the kind of a call's outcome, for counts.
func faultKind(err error) string {
	var (
		se *StatusError
		re *RetryError
	)
	kind := "other"
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrPoolTimeout):
		kind = "pool_timeout"
	case errors.Is(err, ErrClosed):
		kind = "closed"
	case errors.As(err, &se):
		kind = fmt.Sprintf("status_%d", se.StatusCode)
	case errors.Is(err, context.DeadlineExceeded):
		kind = "deadline"
	case errors.Is(err, syscall.ECONNREFUSED):
		kind = "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		kind = "reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), faultServerClosedIdle(err):
		kind = "eof"
	case errors.As(err, new(textproto.ProtocolError)):
		kind = "malformed" // a response cut short in its headers
	case errors.Is(err, net.ErrClosed):
		kind = "closed_conn" // the client's own end was closed under the request
	}
	if errors.As(err, &re) && re.BudgetRefused {
		kind += "+budget"
	}
	return kind
}

// faultServerClosedIdle matches net/http's unexported error for a pooled
// connection found closed by the server; it has no type or sentinel, so
// only its text tells it apart.
func faultServerClosedIdle(err error) bool {
	return strings.Contains(err.Error(), "http: server closed idle connection")
}

// faultTally counts calls by outcome.
type faultTally struct {
	sent, ok, failed int
	kinds            map[string]int
	first            map[string]error // the first error of each kind
	maxDur           time.Duration
}

func faultCount(calls []faultCall) faultTally {
	ft := faultTally{kinds: map[string]int{}, first: map[string]error{}}
	for _, c := range calls {
		ft.sent++
		ft.maxDur = max(ft.maxDur, c.dur())
		k := faultKind(c.err)
		if c.err == nil {
			ft.ok++
			continue
		}
		ft.failed++
		ft.kinds[k]++
		if ft.first[k] == nil {
			ft.first[k] = c.err
		}
	}
	return ft
}

func (ft faultTally) String() string {
	var kinds []string
	for _, k := range slices.Sorted(maps.Keys(ft.kinds)) {
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, ft.kinds[k]))
	}
	return fmt.Sprintf("sent=%d ok=%d failed=%d {%s} max=%s", ft.sent, ft.ok, ft.failed, strings.Join(kinds, " "), ft.maxDur.Round(time.Millisecond))
}

// only reports the kinds of failure outside allowed.
func (ft faultTally) only(allowed ...string) error {
	var bad []string
	for k, n := range ft.kinds {
		if !slices.Contains(allowed, k) {
			bad = append(bad, fmt.Sprintf("%d %s (first: %v)", n, k, ft.first[k]))
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		return fmt.Errorf("unexpected failures: %s", strings.Join(bad, "; "))
	}
	return nil
}

// faultSummary is the one line a scenario logs.
func faultSummary(t testing.TB, name string, ft faultTally, srv refserver.Stats, cs Stats) {
	t.Helper()
	t.Logf("%s: %s | server: executed=%d deduplicated=%d requests=%d accepted=%d refused=%d peak_open=%d | client: created=%d retries=%d budget_refusals=%d pool_timeouts=%d closed_by=%+v",
		name, ft, srv.Executions, srv.Deduplicated, srv.Requests, srv.Accepted, srv.Refused, srv.PeakOpen,
		cs.Created, cs.Retries, cs.BudgetRefusals, cs.PoolTimeouts, cs.ClosedBy)
}

// faultGet sends GET url and reads the body to the end; a non-2xx status is
// a *StatusError, as PostJSON returns.
func faultGet(ctx context.Context, c *Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return &StatusError{StatusCode: resp.StatusCode, Method: req.Method, URL: url}
	}
	return nil
}

// faultConfig is the base of every scenario: HTTP/1.1, short backoffs, so
// that counts come from many calls in little time.
func faultConfig() Config {
	cfg := DefaultConfig()
	cfg.DisableHTTP2 = true
	cfg.RetryBackoffFactor = 0.02
	cfg.RetryMaxBackoff = 200 * time.Millisecond
	cfg.RequestTimeout = 2 * time.Second
	cfg.ConnectionTimeout = time.Second
	return cfg
}

// faultCheckMayHaveRun checks a failed non-idempotent call was not retried
// and its error is classified as "may have run".
func faultCheckMayHaveRun(t *testing.T, calls []faultCall) {
	t.Helper()
	for _, c := range calls {
		if c.err == nil {
			continue
		}
		var re *RetryError
		if errors.As(c.err, &re) {
			t.Errorf("a plain POST was retried after it may have run: %v", c.err)
			return
		}
		if got := classify(nil, c.err); got != retryIdempot {
			t.Errorf("classify(%v) = %v, want retryIdempot (may have run)", c.err, got)
			return
		}
	}
}
