package warmpool

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/refserver"
)

// tokenSchedSlack is what a bound on a token wait allows on top of the
// timeout under test on a loaded machine running -race.
const tokenSchedSlack = 250 * time.Millisecond

func TestTokenIssuerHangs(t *testing.T) {
	const (
		callers = 20
		secret  = "hung-issuer-secret-token"
		timeout = time.Second
	)
	srv := startServer(t, refserver.Options{})
	var calls atomic.Int64
	// The source hangs until its context ends; the cache runs the fetch
	// detached for up to 30s, so the test releases it at the end, lest
	// goleak find the goroutine.
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	src := TokenSourceFunc(func(ctx context.Context) (Token, error) {
		calls.Add(1)
		select {
		case <-ctx.Done():
			return Token{}, ctx.Err()
		case <-release:
			return Token{Value: secret}, nil
		}
	})
	cfg := DefaultConfig()
	cfg.RequestTimeout = timeout
	cfg.ConnectionTimeout = timeout
	cfg.MaxRetries = -1
	c := newClient(t, srv, cfg, WithTokenSource(src), WithLogger(slog.New(slog.DiscardHandler)))

	durs := make([]time.Duration, callers)
	errs := load(t, callers, callers, func(i int) error {
		start := time.Now()
		err := c.PostJSON(context.Background(), srv.URL()+"/answer", question, nil)
		durs[i] = time.Since(start)
		return err
	})
	lo, hi := timeout-100*time.Millisecond, timeout+100*time.Millisecond+tokenSchedSlack
	for i, err := range errs {
		var te *TokenError
		switch {
		case err == nil:
			t.Errorf("call %d: got no error, want a *TokenError", i)
			continue
		case !errors.As(err, &te):
			t.Errorf("call %d: got %T %v, want a *TokenError", i, err, err)
		case te.Source == "":
			t.Errorf("call %d: TokenError.Source is empty, want the source named", i)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("call %d: got %v, want errors.Is(err, context.DeadlineExceeded)", i, err)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("call %d: error %q contains the token", i, err)
		}
		if d := durs[i]; d < lo || d > hi {
			t.Errorf("call %d: failed after %s, want within [%s, %s] (request_timeout %s ± 100ms, +%s for a loaded machine)",
				i, d, lo, hi, timeout, tokenSchedSlack)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("issuer calls: got %d, want 1 (one fetch shared by %d callers)", n, callers)
	}
	t.Logf("first error: %v", errs[0])
}

func TestTokenIssuerDown(t *testing.T) {
	const (
		workers  = 8
		maxCalls = 200
		period   = time.Second
	)
	srv := startServer(t, refserver.Options{})
	var calls atomic.Int64
	src := TokenSourceFunc(func(context.Context) (Token, error) {
		calls.Add(1)
		return Token{}, errors.New("issuer unavailable")
	})
	c := newClient(t, srv, DefaultConfig(), WithTokenSource(src), WithLogger(slog.New(slog.DiscardHandler)))

	// 200 calls spread over 1s: each worker pauses 40ms between calls.
	var (
		made  atomic.Int64
		mu    sync.Mutex
		other []error
	)
	start := time.Now()
	load(t, maxCalls, workers, until(period, nil, func(int) error {
		made.Add(1)
		err := c.PostJSON(context.Background(), srv.URL()+"/answer", question, nil)
		var te *TokenError
		if !errors.As(err, &te) {
			mu.Lock()
			other = append(other, err)
			mu.Unlock()
		}
		time.Sleep(period * workers / maxCalls)
		return nil
	}))
	elapsed := time.Since(start)
	n := min(made.Load(), maxCalls)
	if len(other) > 0 {
		t.Errorf("%d of %d calls did not fail with a *TokenError; first: %v", len(other), n, other[0])
	}
	secs := elapsed.Seconds()
	if limit := 5*secs + 1; float64(calls.Load()) > limit {
		t.Errorf("issuer calls: got %d over %s of load (%d calls), want ≤ 5 per second + 1 = %.1f", calls.Load(), elapsed.Round(time.Millisecond), n, limit)
	}
	if ss := srv.Stats(); ss.Requests != 0 {
		t.Errorf("server requests: got %d, want 0 (no call has a token)", ss.Requests)
	}
	t.Logf("%d calls over %s, issuer called %d times", n, elapsed.Round(time.Millisecond), calls.Load())
}

func TestTokenRefreshNeverBlocks(t *testing.T) {
	const (
		lifetime      = 2 * time.Second
		refreshBefore = 1500 * time.Millisecond
		slowFetch     = time.Second // a call that waited for the refresh would take this long
		workers       = 4
		perWorker     = 60
		pause         = 20 * time.Millisecond
		callBound     = 500 * time.Millisecond // half of slowFetch: generous for a loaded machine
	)
	srv := startServer(t, refserver.Options{})
	var calls atomic.Int64
	src := TokenSourceFunc(func(ctx context.Context) (Token, error) {
		if calls.Add(1) > 1 { // the refreshes are slow, the first fetch is not
			select {
			case <-time.After(slowFetch):
			case <-ctx.Done():
				return Token{}, ctx.Err()
			}
		}
		return Token{Value: "tok-" + time.Now().Format("150405.000000"), Expiry: time.Now().Add(lifetime)}, nil
	})
	c := newClient(t, srv, DefaultConfig(), WithTokenSource(CachedTokenSource(src, refreshBefore)),
		WithLogger(slog.New(slog.DiscardHandler)))
	url := srv.URL() + "/answer"
	if err := post(c, url); err != nil { // the first fetch and the connection
		t.Fatal(err)
	}

	// Calls for about 1.2s: the refresh falls due 0.5s after the first
	// fetch and takes 300ms, while the token stays valid for 2s.
	var slow atomic.Int64
	var worst atomic.Int64
	errs := load(t, workers*perWorker, workers, func(int) error {
		start := time.Now()
		if err := post(c, url); err != nil {
			return err
		}
		d := time.Since(start)
		storeMax(&worst, int64(d))
		if d > callBound {
			slow.Add(1)
		}
		time.Sleep(pause)
		return nil
	})
	if ok, _, _, first := countErrs(errs, nil); ok != len(errs) {
		t.Fatalf("got %d of %d calls failing, want 0; first error: %v", len(errs)-ok, len(errs), first)
	}
	if n := slow.Load(); n > 0 {
		t.Errorf("got %d calls slower than %s (worst %s), want 0: calls must not wait for the refresh",
			n, callBound, time.Duration(worst.Load()))
	}
	if n := calls.Load(); n < 2 {
		t.Errorf("source calls: got %d, want ≥ 2 (a refresh ran during the load)", n)
	}
	t.Logf("source called %d times, worst call %s", calls.Load(), time.Duration(worst.Load()))
}
