package warmpool

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/refserver"
)

// authLog is a JSON slog handler's output, safe for concurrent writes.
type authLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *authLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *authLog) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.buf.String() }

func (l *authLog) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// authClient builds a client for httptest servers and closes it after the test.
func authClient(t testing.TB, cfg Config, opts ...Option) *Client {
	t.Helper()
	c, err := New(cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// echoAuth answers 500 with the Authorization header it got, or only its
// credential at /bare, as some servers do in error pages.
var echoAuth = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	v := r.Header.Get("Authorization")
	if r.URL.Path == "/bare" {
		_, v, _ = strings.Cut(v, " ")
	}
	http.Error(w, "rejected credential: "+v, http.StatusInternalServerError)
})

func TestTokenNeverLeaks(t *testing.T) {
	srv := httptest.NewServer(echoAuth)
	defer srv.Close()
	var log authLog
	c := authClient(t, DefaultConfig(), WithLogger(log.logger()), WithTokenSource(StaticToken(secret)))
	var outputs []string
	for _, path := range []string{"/header", "/bare"} {
		err := c.PostJSON(context.Background(), srv.URL+path, question, nil)
		var se *StatusError
		if !errors.As(err, &se) || se.StatusCode != 500 {
			t.Fatalf("%s: got %v, want a StatusError 500", path, err)
		}
		if !bytes.Contains(se.Body, []byte("rejected credential: ")) {
			t.Fatalf("%s: got body %q, want the echo", path, se.Body)
		}
		outputs = append(outputs, err.Error(), string(se.Body), fmt.Sprintf("%+v %#v", se, se))
	}

	// Per origin: the token echoed is not the newest one the client sent.
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "{}")
	}))
	defer other.Close()
	var perOrigin *Client
	first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := perOrigin.PostJSON(r.Context(), other.URL, question, nil); err != nil {
			t.Errorf("request to the other origin: %v", err)
		}
		echoAuth(w, r)
	}))
	defer first.Close()
	perOrigin = authClient(t, DefaultConfig(), WithLogger(log.logger()), WithTokenSourceFor(func(aud string) TokenSource {
		return StaticToken(secret + "-for-" + strings.TrimPrefix(aud, "http://"))
	}))
	err := perOrigin.PostJSON(context.Background(), first.URL+"/bare", question, nil)
	if err == nil {
		t.Fatal("got no error from the echoing server")
	}
	outputs = append(outputs, err.Error())

	c.Close()
	perOrigin.Close()
	outputs = append(outputs, log.String())
	for _, out := range outputs {
		if strings.Contains(out, secret) {
			t.Errorf("token leaked in %q", out)
		}
	}
}

func TestAuthConfigNeverPrinted(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Auth = AuthConfig{Type: "static", Token: secret}
	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("config", "cfg", cfg, "auth", cfg.Auth)
	slog.New(slog.NewJSONHandler(&js, nil)).Info("config", "cfg", cfg, "auth", cfg.Auth)
	marshaled, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{
		"%v":          fmt.Sprintf("%v", cfg),
		"%+v":         fmt.Sprintf("%+v", cfg),
		"%#v":         fmt.Sprintf("%#v", cfg),
		"%s":          fmt.Sprintf("%s", cfg.Auth),
		"%q":          fmt.Sprintf("%q", cfg.Auth),
		"%x":          fmt.Sprintf("%x", cfg.Auth),
		"%v of *":     fmt.Sprintf("%v", &cfg),
		"String":      cfg.Auth.String(),
		"GoString":    cfg.Auth.GoString(),
		"slog text":   text.String(),
		"slog JSON":   js.String(),
		"JSON":        string(marshaled),
		"validate":    fmt.Sprint(AuthConfig{Type: "env", Env: "X", Token: secret}.validate()),
		"parse error": fmt.Sprint(ParseConfig([]byte("auth:\n  type: file\n  path: /p\n  token: "+secret+"\n"), "c.yaml")),
	} {
		if strings.Contains(out, secret) {
			t.Errorf("%s: token printed: %s", name, out)
		}
		if name == "%+v" && !strings.Contains(out, "Token:[redacted]") {
			t.Errorf("%s: got %s, want Token:[redacted]", name, out)
		}
	}
	if got, want := fmt.Sprintf("%#v", AuthConfig{Type: "static", Token: secret}), `warmpool.AuthConfig{Type:"static", Audience:"", Path:"", Env:"", Command:[]string(nil), Token:"[redacted]", RefreshBefore:0, Timeout:0}`; got != want {
		t.Errorf("%%#v: got %s, want %s", got, want)
	}
}

func TestRedirectAuthorization(t *testing.T) {
	type hit struct{ host, auth string }
	var mu sync.Mutex
	var hits []hit
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits = append(hits, hit{r.Host, r.Header.Get("Authorization")})
		mu.Unlock()
		if to := r.URL.Query().Get("to"); to != "" {
			http.Redirect(w, r, to, http.StatusFound)
		}
	})
	a, b := httptest.NewServer(h), httptest.NewServer(h)
	defer a.Close()
	defer b.Close()
	aHost, bHost := a.Listener.Addr().String(), b.Listener.Addr().String()
	localhost := "localhost:" + a.URL[strings.LastIndex(a.URL, ":")+1:]
	tests := []struct {
		name string
		to   string
		want []bool // Authorization sent at each hop after the first
	}{
		{"same origin", "http://" + aHost + "/final", []bool{true}},
		{"other port", "http://" + bHost + "/final", []bool{false}},
		{"other host name", "http://" + localhost + "/final", []bool{false}},
		{"other port and back", "http://" + bHost + "/hop?to=" + url.QueryEscape("http://"+aHost+"/final"), []bool{false, false}},
	}
	for _, mode := range []string{"client's token", "caller's header"} {
		for _, tt := range tests {
			t.Run(mode+"/"+tt.name, func(t *testing.T) {
				var opts []Option
				if mode == "client's token" {
					opts = append(opts, WithTokenSource(StaticToken(secret)))
				}
				c := authClient(t, DefaultConfig(), opts...)
				req, _ := http.NewRequest(http.MethodGet, a.URL+"/start?to="+url.QueryEscape(tt.to), nil)
				if mode == "caller's header" {
					req.Header.Set("Authorization", "Bearer "+secret)
				}
				mu.Lock()
				hits = nil
				mu.Unlock()
				resp, err := c.HTTPClient().Do(req)
				if err != nil {
					t.Fatalf("GET: %v", err)
				}
				resp.Body.Close()
				mu.Lock()
				defer mu.Unlock()
				if len(hits) != 1+len(tt.want) {
					t.Fatalf("got %d requests, want %d", len(hits), 1+len(tt.want))
				}
				if hits[0].auth != "Bearer "+secret {
					t.Errorf("original request: got Authorization %q, want the token", hits[0].auth)
				}
				for i, want := range tt.want {
					if got := hits[i+1].auth != ""; got != want {
						t.Errorf("hop %d to %s: got Authorization sent %v, want %v", i+1, hits[i+1].host, got, want)
					}
				}
			})
		}
	}
}

// dialLoopback makes c dial addr whatever host a URL names, so that a test
// can use a non-loopback name without any packet leaving the machine. It
// bypasses the pool's accounting, which the test does not need.
func dialLoopback(c *Client, addr string) {
	c.tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
}

func TestInsecureTokenSetting(t *testing.T) {
	var got []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Authorization"))
		mu.Unlock()
	}))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":"):]
	tests := []struct {
		name    string
		url     string
		allow   bool
		wantErr bool
	}{
		{"remote host refused", "http://192.0.2.1" + port, false, true},
		{"remote host allowed", "http://192.0.2.1" + port, true, false},
		{"loopback address", srv.URL, false, false},
		{"localhost", "http://localhost" + port, false, false},
		{"IPv6 loopback", "http://[::1]" + port, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.AllowInsecureToken = tt.allow
			var retries atomic.Int64
			c := authClient(t, cfg, WithTokenSource(StaticToken(secret)),
				WithHooks(Hooks{Retry: func(RetryInfo) { retries.Add(1) }}))
			dialLoopback(c, srv.Listener.Addr().String())
			mu.Lock()
			got = nil
			mu.Unlock()
			resp, err := c.HTTPClient().Get(tt.url + "/x")
			if tt.wantErr {
				if err == nil {
					resp.Body.Close()
					t.Fatal("got a response, want an error")
				}
				if !errors.Is(err, ErrInsecureToken) || !strings.Contains(err.Error(), "allow_insecure_token") ||
					strings.Contains(err.Error(), secret) {
					t.Errorf("got %q, want ErrInsecureToken naming allow_insecure_token, without the token", err)
				}
				if n := retries.Load(); n != 0 {
					t.Errorf("got %d retries, want none: a setting does not change between attempts", n)
				}
				if len(got) != 0 {
					t.Errorf("the server got %d requests, want none", len(got))
				}
				return
			}
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			resp.Body.Close()
			if len(got) != 1 || got[0] != "Bearer "+secret {
				t.Errorf("server got Authorization %q, want the token once", got)
			}
		})
	}
}

func TestTLSVerifiedByDefault(t *testing.T) {
	srv := startServer(t, refserver.Options{Proto: "tls"})
	var retries int
	var mu sync.Mutex
	c := authClient(t, DefaultConfig(), WithHooks(Hooks{Retry: func(RetryInfo) { mu.Lock(); retries++; mu.Unlock() }}))
	resp, err := c.HTTPClient().Get(srv.URL() + "/healthz")
	if err == nil {
		resp.Body.Close()
		t.Fatal("got a response from a server with an untrusted certificate")
	}
	var re *RetryError
	if !isCertError(err) || errors.As(err, &re) {
		t.Errorf("got %v, want a certificate error, not retried", err)
	}
	if retries != 0 || srv.Stats().Requests != 0 {
		t.Errorf("got %d retries and %d requests served, want none", retries, srv.Stats().Requests)
	}
}

func TestTLSMinimumVersion12(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	srv.Config.ErrorLog = stdlog.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	roots := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs

	// The server does speak TLS 1.1, to a client that allows it.
	conn, err := tls.Dial("tcp", srv.Listener.Addr().String(), &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS10, ServerName: "example.com"})
	if err != nil {
		t.Skipf("this Go refuses TLS 1.1 even when asked: %v", err)
	}
	conn.Close()

	cfg := DefaultConfig()
	cfg.MaxRetries = -1 // a handshake failure is retried like a refused dial
	c := authClient(t, cfg, WithTLSConfig(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS10}))
	resp, err := c.HTTPClient().Get(srv.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatal("got a response over TLS 1.1, want the handshake to fail")
	}
	if !strings.Contains(err.Error(), "protocol version") {
		t.Errorf("got %v, want a protocol version error", err)
	}
}

func TestInsecureSkipVerifyWarns(t *testing.T) {
	srv := startServer(t, refserver.Options{Proto: "tls"})
	var log authLog
	c := authClient(t, DefaultConfig(), WithLogger(log.logger()), WithTLSConfig(&tls.Config{InsecureSkipVerify: true}))
	resp, err := c.HTTPClient().Get(srv.URL() + "/healthz")
	if err != nil {
		t.Fatalf("GET with verification off: %v", err)
	}
	resp.Body.Close()
	var line struct{ Level, Msg string }
	first, _, _ := strings.Cut(log.String(), "\n")
	if err := json.Unmarshal([]byte(first), &line); err != nil {
		t.Fatalf("log %q: %v", log.String(), err)
	}
	if line.Level != "WARN" || !strings.Contains(line.Msg, "TLS certificate verification is disabled") {
		t.Errorf("got log line %s, want a warning that TLS certificate verification is disabled", first)
	}
	quiet := authLog{}
	authClient(t, DefaultConfig(), WithLogger(quiet.logger()), WithTLSConfig(&tls.Config{}))
	if strings.Contains(quiet.String(), "verification") {
		t.Errorf("got %s with verification on, want no warning", quiet.String())
	}
}

func TestRegisterTokenSourceTypePanics(t *testing.T) {
	registerTestType("test-dup", func(AuthConfig) (TokenSource, error) { return nil, nil })
	f := func(AuthConfig) (TokenSource, error) { return nil, nil }
	for name, call := range map[string]func(){
		"duplicate": func() { RegisterTokenSourceType("test-dup", f) },
		"built in":  func() { RegisterTokenSourceType("file", f) },
		"no name":   func() { RegisterTokenSourceType("", f) },
		"nil func":  func() { RegisterTokenSourceType("test-nil", nil) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("got no panic")
				}
			}()
			call()
		})
	}
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
