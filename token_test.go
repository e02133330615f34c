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
	"time"

	"net/http"
	"net/http/httptest"

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

func TestTokenIsSentAndChecked(t *testing.T) {
	srv := startServer(t, refserver.Options{Token: secret})
	good := newClient(t, srv, DefaultConfig(), WithTokenSource(StaticToken(secret)))
	if err := post(good, srv.URL()+"/answer"); err != nil {
		t.Fatalf("with the right token: %v", err)
	}
	none := newClient(t, srv, DefaultConfig())
	var se *StatusError
	if err := post(none, srv.URL()+"/answer"); !errors.As(err, &se) || se.StatusCode != 401 {
		t.Fatalf("without a token: got %v, want StatusError 401", err)
	}
	wrong := newClient(t, srv, DefaultConfig(), WithTokenSource(StaticToken("wrong-"+secret)))
	err := post(wrong, srv.URL()+"/answer")
	if !errors.As(err, &se) || se.StatusCode != 401 {
		t.Fatalf("with a wrong token: got %v, want StatusError 401", err)
	}
	if strings.Contains(err.Error(), secret) || strings.Contains(string(se.Body), secret) {
		t.Errorf("error leaks the token: %v / %q", err, se.Body)
	}
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

// fakeClock is a settable clock for the token cache.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeClock) now() time.Time      { f.mu.Lock(); defer f.mu.Unlock(); return f.t }
func (f *fakeClock) add(d time.Duration) { f.mu.Lock(); f.t = f.t.Add(d); f.mu.Unlock() }

func TestTokenCacheRefresh(t *testing.T) {
	ctx := context.Background()
	clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	src := &countingSource{prefix: "tok", ttl: time.Hour, now: clk.now}
	cache := CachedTokenSource(src, 5*time.Minute)
	cache.now = clk.now

	get := func() string {
		t.Helper()
		tok, err := cache.Token(ctx)
		if err != nil {
			t.Fatalf("Token: %v", err)
		}
		return tok.Value
	}
	waitFetches := func(n int64) {
		t.Helper()
		waitFor(t, fmt.Sprintf("%d fetches", n), 2*time.Second, func() bool {
			f, _ := cache.FetchStats()
			cache.mu.Lock()
			idle := cache.inflight == nil
			cache.mu.Unlock()
			return f == n && idle
		})
	}

	if got := get(); got != "tok1" {
		t.Fatalf("first token %q, want tok1", got)
	}
	clk.add(54 * time.Minute) // before the refresh window
	if got := get(); got != "tok1" || src.calls.Load() != 1 {
		t.Fatalf("got %q after %d fetches, want tok1 after 1", got, src.calls.Load())
	}

	clk.add(2 * time.Minute) // inside the window: old token served, refresh in background
	src.fail.Store(true)
	if got := get(); got != "tok1" {
		t.Fatalf("in the refresh window got %q, want the still valid tok1", got)
	}
	waitFetches(2)
	if got := get(); got != "tok1" {
		t.Fatalf("after a failed refresh got %q, want the still valid tok1", got)
	}
	if _, failures := cache.FetchStats(); failures != 1 {
		t.Errorf("failures = %d, want 1", failures)
	}

	clk.add(2 * time.Second) // past the retry pause: the next call refreshes again
	src.fail.Store(false)
	get()
	waitFetches(3)
	if got := get(); got != "tok3" {
		t.Fatalf("after a successful refresh got %q, want tok3", got)
	}

	clk.add(2 * time.Hour) // expired, issuer down: a clear error
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
}

func TestTokenWaitHonoursContext(t *testing.T) {
	src := &countingSource{prefix: "tok", delay: 300 * time.Millisecond, now: time.Now}
	cache := CachedTokenSource(src, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := cache.Token(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want context.DeadlineExceeded", err)
	}
	// The shared fetch carries on for the next caller.
	tok, err := cache.Token(context.Background())
	if err != nil || tok.Value != "tok1" {
		t.Fatalf("got %v, %v; want tok1 from the one shared fetch", tok.Value, err)
	}
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

func TestTokenNotSentOverPlainHTTPToRemoteHost(t *testing.T) {
	c, err := New(DefaultConfig(), WithTokenSource(StaticToken(secret)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// 192.0.2.0/24 is TEST-NET-1: never routed, and never dialed here
	// because the check comes first.
	err = c.PostJSON(context.Background(), "http://192.0.2.1/answer", question, nil)
	if err == nil || !strings.Contains(err.Error(), "allow_insecure_token") {
		t.Fatalf("got %v, want an error naming allow_insecure_token", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error leaks the token: %v", err)
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

// TestTokenPerOrigin checks that WithTokenSourceFor gives each origin its own
// cached token, fetched once, with the origin as the audience.
func TestTokenPerOrigin(t *testing.T) {
	type seen struct{ path, auth string }
	got := make(chan seen, 100)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- seen{r.URL.Path, r.Header.Get("Authorization")} })
	a, b := httptest.NewServer(h), httptest.NewServer(h)
	defer a.Close()
	defer b.Close()

	var mu sync.Mutex
	fetches := map[string]int{}
	c := newClient(t, &refserver.Server{}, DefaultConfig(), WithTokenSourceFor(func(aud string) TokenSource {
		return TokenSourceFunc(func(context.Context) (Token, error) {
			mu.Lock()
			defer mu.Unlock()
			fetches[aud]++
			return Token{Value: fmt.Sprintf("for %s #%d", aud, fetches[aud]), Expiry: time.Now().Add(time.Hour)}, nil
		})
	}))
	for i := range 10 {
		for _, srv := range []*httptest.Server{a, b} {
			resp, err := c.HTTPClient().Get(srv.URL + "/" + srv.URL[7:])
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			resp.Body.Close()
			if s := <-got; s.auth != "Bearer for "+srv.URL+" #1" {
				t.Fatalf("request %d to %s: got Authorization %q, want its origin's first token", i, s.path, s.auth)
			}
		}
	}
	if want := map[string]int{a.URL: 1, b.URL: 1}; fmt.Sprint(fetches) != fmt.Sprint(want) {
		t.Errorf("got fetches per audience %v, want %v", fetches, want)
	}
	if f, _ := c.tokens.fetchStats(); f != 2 {
		t.Errorf("got %d fetches in all, want 2", f)
	}
}
