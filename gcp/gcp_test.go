package gcp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warmpool/warmpool"
)

const identityPath = "/computeMetadata/v1/instance/service-accounts/default/identity"

// fakeJWT returns an unsigned JWT whose claims name aud, a serial number
// and exp.
func fakeJWT(aud string, n int64, exp time.Time) string {
	enc := base64.RawURLEncoding.EncodeToString
	claims, _ := json.Marshal(map[string]any{"aud": aud, "n": n, "exp": exp.Unix()})
	return enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc(claims) + ".c2lnbmF0dXJl"
}

// metadataServer emulates the metadata server's identity endpoint on
// 127.0.0.1, and points GCE_METADATA_HOST at itself for the test.
type metadataServer struct {
	srv     *httptest.Server
	fetches atomic.Int64
	expiry  func(n int64) time.Time // of the nth token
	body    func(aud string, n int64) string

	mu        sync.Mutex
	audiences []string
	problems  []string
	issued    map[string]string // audience → last token
}

func startMetadata(t testing.TB) *metadataServer {
	t.Helper()
	m := &metadataServer{expiry: func(int64) time.Time { return time.Now().Add(time.Hour) }}
	m.body = func(aud string, n int64) string { return fakeJWT(aud, n, m.expiry(n)) }
	m.srv = httptest.NewServer(http.HandlerFunc(m.serve))
	t.Cleanup(func() {
		m.srv.Close()
		defaultHTTPClient.CloseIdleConnections()
	})
	t.Setenv("GCE_METADATA_HOST", m.srv.Listener.Addr().String())
	return m
}

func (m *metadataServer) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	m.mu.Lock()
	switch {
	case r.URL.Path != identityPath:
		m.problems = append(m.problems, "path "+r.URL.Path)
	case r.Header.Get("Metadata-Flavor") != "Google":
		m.problems = append(m.problems, "Metadata-Flavor "+r.Header.Get("Metadata-Flavor"))
	case q.Get("format") != "full":
		m.problems = append(m.problems, "format "+q.Get("format"))
	}
	m.audiences = append(m.audiences, q.Get("audience"))
	m.mu.Unlock()
	n := m.fetches.Add(1)
	tok := m.body(q.Get("audience"), n)
	m.mu.Lock()
	if m.issued == nil {
		m.issued = map[string]string{}
	}
	m.issued[q.Get("audience")] = tok
	m.mu.Unlock()
	w.Header().Set("Metadata-Flavor", "Google")
	io.WriteString(w, tok+"\n")
}

// seen returns the audiences asked for and any request that the real
// server would have refused.
func (m *metadataServer) seen() (audiences, problems []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.audiences...), append([]string(nil), m.problems...)
}

func TestIDTokenRequest(t *testing.T) {
	m := startMetadata(t)
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	m.expiry = func(int64) time.Time { return exp }
	const aud = "https://backend-xyz.a.run.app"

	tok, err := IDTokenSource(aud).Token(context.Background())
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	if want := fakeJWT(aud, 1, exp); tok.Value != want {
		t.Errorf("got token %s, want the one the server issued", tok.Value)
	}
	if !tok.Expiry.Equal(exp) {
		t.Errorf("got Expiry %v, want the exp claim %v", tok.Expiry, exp)
	}
	audiences, problems := m.seen()
	if len(audiences) != 1 || audiences[0] != aud {
		t.Errorf("got audiences %q, want [%s]", audiences, aud)
	}
	if len(problems) > 0 {
		t.Errorf("requests the metadata server would refuse: %q", problems)
	}
}

func TestIDTokenFetchedOncePerLifetime(t *testing.T) {
	m := startMetadata(t)
	cache := warmpool.CachedTokenSource(IDTokenSource("https://backend"), 5*time.Minute)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := cache.Token(context.Background()); err != nil {
				t.Errorf("Token: %v", err)
			}
		})
	}
	wg.Wait()
	for range 100 {
		if _, err := cache.Token(context.Background()); err != nil {
			t.Fatalf("Token: %v", err)
		}
	}
	if n := m.fetches.Load(); n != 1 {
		t.Errorf("got %d fetches for 150 calls within one token lifetime, want 1", n)
	}
}

func TestIDTokenRefreshedEarly(t *testing.T) {
	m := startMetadata(t)
	first := time.Now().Add(time.Hour).Truncate(time.Second)
	m.expiry = func(n int64) time.Time { return first.Add(time.Duration(n-1) * time.Hour) }
	// The refresh window opens 300ms from now.
	cache := warmpool.CachedTokenSource(IDTokenSource("https://backend"), time.Until(first)-300*time.Millisecond)
	ctx := context.Background()

	tok1, err := cache.Token(ctx)
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	if tok2, _ := cache.Token(ctx); tok2.Value != tok1.Value || m.fetches.Load() != 1 {
		t.Fatalf("before the refresh window: got a new token or %d fetches, want the first after 1", m.fetches.Load())
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		tok, err := cache.Token(ctx)
		if err != nil {
			t.Fatalf("Token while refreshing: %v", err)
		}
		if tok.Value != tok1.Value {
			if !tok.Expiry.Equal(first.Add(time.Hour)) {
				t.Errorf("refreshed token: got Expiry %v, want %v", tok.Expiry, first.Add(time.Hour))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no refresh within 5s of the window opening; %d fetches", m.fetches.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := m.fetches.Load(); n != 2 {
		t.Errorf("got %d fetches, want 2: the first and one refresh", n)
	}
}

func TestIDTokenErrors(t *testing.T) {
	const secret = "opaque-s3cret-token"
	tests := []struct {
		name     string
		audience string
		handler  http.HandlerFunc // nil: no server listens
		want     []string
	}{
		{"metadata server down", "https://backend", nil,
			[]string{"no ID token for audience https://backend", "within 300ms", "GCE_METADATA_HOST", "deadline exceeded"}},
		{"no service account", "https://backend", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) },
			[]string{"not found", "service account"}},
		{"refused", "https://backend", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "non-empty audience parameter required", http.StatusBadRequest)
		}, []string{"status 400", "non-empty audience parameter required"}},
		{"not a JWT", "https://backend", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, secret) },
			[]string{"not a JWT"}},
		{"empty audience", "", nil, []string{"audience is empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := closedAddr(t)
			if tt.handler != nil {
				srv := httptest.NewServer(tt.handler)
				t.Cleanup(func() { srv.Close(); defaultHTTPClient.CloseIdleConnections() })
				addr = srv.Listener.Addr().String()
			}
			t.Setenv("GCE_METADATA_HOST", addr)
			start := time.Now()
			_, err := IDTokenSource(tt.audience, WithTimeout(300*time.Millisecond)).Token(context.Background())
			if err == nil {
				t.Fatal("got no error")
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %s, want about the 300ms timeout at most", d)
			}
			msg := err.Error()
			if tt.audience != "" && !strings.Contains(msg, addr) {
				t.Errorf("got %q, want it to name the metadata server %s", msg, addr)
			}
			for _, want := range tt.want {
				if !strings.Contains(msg, want) {
					t.Errorf("got %q, want it to contain %q", msg, want)
				}
			}
			if strings.Contains(msg, secret) {
				t.Errorf("error leaks the token: %q", msg)
			}
		})
	}
}

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestAuthConfigTypeGCP(t *testing.T) {
	m := startMetadata(t)
	t.Run("audience set", func(t *testing.T) {
		src, err := warmpool.AuthConfig{Type: "gcp", Audience: "https://backend"}.TokenSource()
		if err != nil {
			t.Fatalf("TokenSource: %v", err)
		}
		if _, err := src.Token(context.Background()); err != nil {
			t.Fatalf("Token: %v", err)
		}
	})
	t.Run("no audience: TokenSource", func(t *testing.T) {
		_, err := warmpool.AuthConfig{Type: "gcp"}.TokenSource()
		if !errors.Is(err, warmpool.ErrAudienceRequired) {
			t.Fatalf("got %v, want ErrAudienceRequired", err)
		}
	})
	t.Run("no audience: a token per origin", func(t *testing.T) {
		opt, err := warmpool.AuthConfig{Type: "gcp"}.Option()
		if err != nil {
			t.Fatalf("Option: %v", err)
		}
		c, err := warmpool.New(warmpool.DefaultConfig(), opt)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		m.mu.Lock()
		m.audiences = nil
		m.mu.Unlock()
		var want []string
		for i := range 2 {
			var got atomic.Value
			backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got.Store(r.Header.Get("Authorization"))
			}))
			defer backend.Close()
			want = append(want, backend.URL)
			for range 3 {
				resp, err := c.HTTPClient().Get(backend.URL + "/x")
				if err != nil {
					t.Fatalf("GET: %v", err)
				}
				resp.Body.Close()
			}
			m.mu.Lock()
			issued := m.issued[backend.URL]
			m.mu.Unlock()
			if tok, _ := got.Load().(string); issued == "" || tok != "Bearer "+issued {
				t.Errorf("backend %d got Authorization %q, want its own token %q", i, tok, issued)
			}
		}
		if audiences, _ := m.seen(); fmt.Sprint(audiences) != fmt.Sprint(want) {
			t.Errorf("got audiences %q, want one fetch per origin %q", audiences, want)
		}
	})
}
