package warmpool

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/warmpool/warmpool/internal/refserver"
)

const secret = "s3cr3t-t0ken-value"

// countingSource hands out numbered tokens and counts its calls.
type countingSource struct {
	calls  atomic.Int64
	delay  time.Duration
	ttl    time.Duration
	fail   atomic.Bool
	now    func() time.Time
	prefix string
}

func (s *countingSource) Token(ctx context.Context) (Token, error) {
	n := s.calls.Add(1)
	if s.delay > 0 {
		time.Sleep(s.delay)
	}
	if s.fail.Load() {
		return Token{}, errors.New("issuer unavailable")
	}
	tok := Token{Value: fmt.Sprintf("%s%d", s.prefix, n)}
	if s.ttl > 0 {
		tok.Expiry = s.now().Add(s.ttl)
	}
	return tok, nil
}

func TestCachedTokenFetchedOnce(t *testing.T) {
	srv := startServer(t, refserver.Options{})
	t.Run("sequential", func(t *testing.T) {
		src := &countingSource{prefix: "tok", ttl: time.Hour, now: time.Now}
		c := newClient(t, srv, DefaultConfig(), WithTokenSource(src))
		for i := range 1000 {
			if err := post(c, srv.URL()+"/answer"); err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
		}
		if n := src.calls.Load(); n != 1 {
			t.Errorf("token source called %d times for 1000 requests, want 1", n)
		}
	})
	t.Run("concurrent first calls", func(t *testing.T) {
		src := &countingSource{prefix: "tok", ttl: time.Hour, now: time.Now, delay: 50 * time.Millisecond}
		c := newClient(t, srv, DefaultConfig(), WithTokenSource(src))
		if ok, _, _, err := countErrs(load(t, 100, 100, func(int) error { return post(c, srv.URL()+"/answer") }), nil); ok != 100 {
			t.Fatalf("%d of 100 succeeded, first error: %v", ok, err)
		}
		if n := src.calls.Load(); n != 1 {
			t.Errorf("token source called %d times for 100 concurrent first calls, want 1", n)
		}
	})
}

// TestTokenCacheRefresh runs in a synctest bubble: its fake clock is the
// cache's own (time.Now in the bubble), time.Sleep moves it on at once, and
// synctest.Wait waits for the background refresh, so the test neither
// sleeps nor polls.
func TestTokenCacheRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		src := &countingSource{prefix: "tok", ttl: time.Hour, now: time.Now}
		cache := CachedTokenSource(src, 5*time.Minute)

		get := func() string {
			t.Helper()
			tok, err := cache.Token(ctx)
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			return tok.Value
		}
		// fetches waits for the background refresh to end and checks the
		// fetches made.
		fetches := func(n int64) {
			t.Helper()
			synctest.Wait()
			if f, _ := cache.FetchStats(); f != n {
				t.Fatalf("got %d fetches, want %d", f, n)
			}
		}

		if got := get(); got != "tok1" {
			t.Fatalf("first token %q, want tok1", got)
		}
		time.Sleep(54 * time.Minute) // before the refresh window
		if got := get(); got != "tok1" || src.calls.Load() != 1 {
			t.Fatalf("got %q after %d fetches, want tok1 after 1", got, src.calls.Load())
		}

		time.Sleep(2 * time.Minute) // inside the window: old token served, refresh in background
		src.fail.Store(true)
		if got := get(); got != "tok1" {
			t.Fatalf("in the refresh window got %q, want the still valid tok1", got)
		}
		fetches(2)
		if got := get(); got != "tok1" {
			t.Fatalf("after a failed refresh got %q, want the still valid tok1", got)
		}
		if _, failures := cache.FetchStats(); failures != 1 {
			t.Errorf("failures = %d, want 1", failures)
		}

		time.Sleep(2 * time.Second) // past the retry pause: the next call refreshes again
		src.fail.Store(false)
		get()
		fetches(3)
		if got := get(); got != "tok3" {
			t.Fatalf("after a successful refresh got %q, want tok3", got)
		}

		time.Sleep(2 * time.Hour) // expired, issuer down: a clear error
		src.fail.Store(true)
		_, err := cache.Token(ctx)
		if err == nil || !strings.Contains(err.Error(), "issuer unavailable") {
			t.Fatalf("expired token with issuer down: got %v, want the fetch error", err)
		}

		cache.Invalidate()
		src.fail.Store(false)
		if got := get(); got != "tok5" {
			t.Errorf("after Invalidate got %q, want a fresh tok5", got)
		}
	})
}

// TestTokenWaitHonoursContext runs in a synctest bubble: the source's
// 300ms and the caller's 20ms pass on the fake clock.
func TestTokenWaitHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &countingSource{prefix: "tok", delay: 300 * time.Millisecond, now: time.Now}
		cache := CachedTokenSource(src, 0)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		start := time.Now()
		if _, err := cache.Token(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d != 20*time.Millisecond {
			t.Errorf("the caller waited %s, want its deadline, 20ms", d)
		}
		// The shared fetch carries on for the next caller.
		tok, err := cache.Token(context.Background())
		if err != nil || tok.Value != "tok1" {
			t.Fatalf("got %v, %v; want tok1 from the one shared fetch", tok.Value, err)
		}
		if n := src.calls.Load(); n != 1 {
			t.Errorf("source called %d times, want 1", n)
		}
	})
}

func TestTokenNeverPrinted(t *testing.T) {
	tok := Token{Value: secret, Expiry: time.Now().Add(time.Hour)}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("token", "tok", tok, "nested", struct{ T Token }{tok})
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("token", "tok", tok, "nested", struct{ T Token }{tok})
	js, err := json.Marshal(struct{ T Token }{tok})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		fmt.Sprint(tok), fmt.Sprintf("%v %+v %#v %s %q %x", tok, tok, tok, tok, tok, tok),
		fmt.Sprintf("%v", struct{ T Token }{tok}), logged.String(), string(js),
	} {
		if strings.Contains(s, secret) {
			t.Errorf("token value printed: %s", s)
		}
	}
}

func TestJWTExpiry(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	jwt := func(payload string) string {
		return enc([]byte(`{"alg":"none"}`)) + "." + enc([]byte(payload)) + ".c2ln"
	}
	tests := []struct {
		name, token string
		want        time.Time
		wantErr     string
	}{
		{"integer exp", jwt(`{"exp":1767225600}`), time.Unix(1767225600, 0), ""},
		{"fractional exp", jwt(`{"exp":1767225600.5}`), time.Unix(1767225600, 5e8), ""},
		{"padded payload", enc([]byte("{}")) + "." + base64.URLEncoding.EncodeToString([]byte(`{"exp":1}`)) + ".x", time.Unix(1, 0), ""},
		{"no exp", jwt(`{"sub":"me"}`), time.Time{}, "no exp claim"},
		{"exp not a number", jwt(`{"exp":"soon"}`), time.Time{}, "not a JSON object with a numeric exp"},
		{"negative exp", jwt(`{"exp":-5}`), time.Time{}, "not a positive time"},
		{"huge exp", jwt(`{"exp":1e300}`), time.Time{}, "not a positive time"},
		{"payload not JSON", jwt(secret), time.Time{}, "not a JSON object"},
		{"payload not base64", "a." + secret + "!.c", time.Time{}, "not base64url"},
		{"opaque token", secret, time.Time{}, "not a JWT"},
		{"two parts", "a.b", time.Time{}, "not a JWT"},
		{"encrypted JWT, five parts", "a.b.c.d.e", time.Time{}, "not a JWT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := JWTExpiry(tt.token)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, %v; want an error containing %q", got, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q leaks the token", err)
				}
				return
			}
			if err != nil || !got.Equal(tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestTokenSourcePanicIsAnError(t *testing.T) {
	cache := CachedTokenSource(TokenSourceFunc(func(context.Context) (Token, error) {
		panic("bad token " + secret)
	}), 0)
	_, err := cache.Token(context.Background())
	if err == nil || !strings.Contains(err.Error(), "token source panicked (string") {
		t.Fatalf("got %v, want an error saying the source panicked", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error %q leaks the panic value", err)
	}
	if _, failures := cache.FetchStats(); failures != 1 {
		t.Errorf("got %d failures, want 1", failures)
	}
}

// TestTokenIssuerHangs runs in a synctest bubble (the server, outside it,
// is never dialed: the token comes first), so every call fails after
// request_timeout exactly, on the fake clock.
func TestTokenIssuerHangs(t *testing.T) {
	const (
		callers = 20
		secret  = "hung-issuer-secret-token"
		timeout = time.Second
	)
	srv := startServer(t, refserver.Options{})
	synctest.Test(t, func(t *testing.T) {
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
			if d := durs[i]; d != timeout {
				t.Errorf("call %d: failed after %s, want request_timeout %s", i, d, timeout)
			}
		}
		if n := calls.Load(); n != 1 {
			t.Errorf("issuer calls: got %d, want 1 (one fetch shared by %d callers)", n, callers)
		}
		t.Logf("first error: %v", errs[0])
	})
}

// TestTokenIssuerDown runs in a synctest bubble (the server, outside it,
// is never dialed): the second of load passes on the fake clock.
func TestTokenIssuerDown(t *testing.T) {
	const (
		workers  = 8
		maxCalls = 200
		period   = time.Second
	)
	srv := startServer(t, refserver.Options{})
	synctest.Test(t, func(t *testing.T) {
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
	})
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
