package frontend

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/examples/answerapp/backend"
	"github.com/warmpool/warmpool/examples/answerapp/externalapi"
	"github.com/warmpool/warmpool/examples/answerapp/idtoken"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.DiscardHandler)

// minted records every token a source handed out, to look for them where
// they must not be.
type minted struct {
	mu     sync.Mutex
	tokens []string
}

func (m *minted) source(src warmpool.TokenSource) warmpool.TokenSource {
	return warmpool.TokenSourceFunc(func(ctx context.Context) (warmpool.Token, error) {
		tok, err := src.Token(ctx)
		m.mu.Lock()
		m.tokens = append(m.tokens, tok.Value)
		m.mu.Unlock()
		return tok, err
	})
}

func (m *minted) all() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.tokens...)
}

// system is the three services, in-process, stopped when the test ends.
type system struct {
	ext     *externalapi.Server
	back    *backend.Server
	issuer  *idtoken.Issuer
	minted  *minted
	backend string
}

func startSystem(t *testing.T) *system {
	t.Helper()
	ext, err := externalapi.Start(externalapi.Config{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	iss, _ := idtoken.NewIssuer(idtoken.NewKey())
	back, err := backend.Start(backend.Config{ExternalURL: ext.URL(), Issuer: iss, Audience: "answer-backend", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		back.Shutdown(ctx)
		ext.Shutdown(ctx)
	})
	return &system{ext: ext, back: back, issuer: iss, minted: &minted{}, backend: back.URL()}
}

// frontend starts a frontend for sys, calling backendURL with tokens.
func (sys *system) frontend(t *testing.T, backendURL string, tokens warmpool.TokenSource) *Server {
	t.Helper()
	cfg := warmpool.DefaultConfig()
	cfg.RetryBackoffFactor = 0.01 // a backend that is down is retried at once
	f, err := Start(Config{BackendURL: backendURL, Client: cfg, Tokens: sys.minted.source(tokens), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := f.Shutdown(ctx); err != nil {
			t.Errorf("frontend shutdown: %v", err)
		}
	})
	return f
}

func postForm(t *testing.T, u string, form url.Values) (int, string) {
	t.Helper()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAsk(t *testing.T) {
	sys := startSystem(t)
	good := sys.issuer.Source("answer-backend", time.Hour)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	down := "http://" + ln.Addr().String()
	ln.Close()
	otherIssuer, _ := idtoken.NewIssuer(idtoken.NewKey())
	failing := warmpool.TokenSourceFunc(func(context.Context) (warmpool.Token, error) {
		return warmpool.Token{}, errors.New("issuer unavailable")
	})
	long := strings.Repeat("why ", backend.DefaultMaxQuestion/4) + "?"

	tests := []struct {
		name     string
		backend  string // "" for the system's
		tokens   warmpool.TokenSource
		question string
		code     int
		want     []string
	}{
		{"a question", "", good, "What does pooling buy?", 200,
			[]string{`id="answer-text">You asked &#34;What does pooling buy?&#34;`}},
		{"empty", "", good, "  \n ", 400, []string{"Your question is empty.", "Type a question"}},
		{"over the backend's limit", "", good, long, 413,
			[]string{"Your question is too long for the backend: question too long: 1001 characters; the limit is 1000.",
				"Shorten it to 1000 characters or fewer.", `id="kind">status<`}},
		{"backend down", down, good, "anyone?", 502,
			[]string{"The backend is down: nothing accepts connections at " + down, "Start it", `id="kind">refused<`}},
		{"token source failing", "", failing, "anyone?", 500,
			[]string{"could not get an ID token", `id="kind">token<`, "issuer unavailable", "never shows a token"}},
		{"token from another issuer", "", otherIssuer.Source("answer-backend", time.Hour), "anyone?", 502,
			[]string{"The backend refused the frontend&#39;s ID token: invalid ID token: bad signature.", "share the token key"}},
		{"markup in the question", "", good, "<script>alert(1)</script>", 200,
			[]string{"&lt;script&gt;alert(1)&lt;/script&gt;"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.backend
			if b == "" {
				b = sys.backend
			}
			f := sys.frontend(t, b, tt.tokens)
			code, page := postForm(t, f.URL()+"/ask", url.Values{"question": {tt.question}})
			if code != tt.code {
				t.Errorf("status %d, want %d", code, tt.code)
			}
			for _, w := range tt.want {
				if !strings.Contains(page, w) {
					t.Errorf("the page lacks %q:\n%s", w, page)
				}
			}
			if strings.Contains(page, "<script>") {
				t.Error("the page holds markup from the question")
			}
			for _, tok := range sys.minted.all() {
				if tok != "" && strings.Contains(page, tok) {
					t.Error("the page shows a token")
				}
			}
		})
	}

	t.Run("external API down", func(t *testing.T) {
		f := sys.frontend(t, sys.backend, good)
		sys.ext.Shutdown(context.Background())
		code, page := postForm(t, f.URL()+"/ask", url.Values{"question": {"anyone?"}})
		if code != 502 || !strings.Contains(page, "could not reach the external API (error kind refused there)") {
			t.Errorf("got %d:\n%s", code, page)
		}
	})
}

func TestLoad(t *testing.T) {
	sys := startSystem(t)
	f := sys.frontend(t, sys.backend, sys.issuer.Source("answer-backend", time.Hour))
	code, page := postForm(t, f.URL()+"/load", url.Values{"n": {"40"}, "c": {"4"}})
	if code != 200 || !strings.Contains(page, `<b id="load-sent">40</b>`) || !strings.Contains(page, `<b id="load-ok">40</b> answered.`) {
		t.Fatalf("got %d:\n%s", code, page)
	}
	st := f.Client().Stats()
	if st.Requests != 40 || sys.back.Answers() != 40 || st.Created != sys.back.Accepted() || st.Created > 4 {
		t.Errorf("pool: %d requests on %d connections; the backend got %d on %d; want 40 on at most 4",
			st.Requests, st.Created, sys.back.Answers(), sys.back.Accepted())
	}
	for _, bad := range []url.Values{{"n": {"0"}, "c": {"4"}}, {"n": {"1001"}, "c": {"4"}}, {"n": {"10"}, "c": {"65"}}, {"n": {"x"}}} {
		if code, page := postForm(t, f.URL()+"/load", bad); code != 400 || !strings.Contains(page, "Send between 1 and 1000 questions, over 1 to 64 at a time.") {
			t.Errorf("%v: got %d:\n%s", bad, code, page)
		}
	}
}
