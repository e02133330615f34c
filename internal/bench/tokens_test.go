package bench

import (
	"context"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warmpool/warmpool"
)

// startIssuerT starts an issuer that the test closes.
func startIssuerT(t *testing.T, token, audience string, delay time.Duration) *tokenIssuer {
	t.Helper()
	iss, err := startIssuer(token, audience, delay)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(iss.close)
	return iss
}

func TestIssuerAnswersAfterDelay(t *testing.T) {
	const delay = 20 * time.Millisecond
	now := time.Now()
	token := mintJWT(now, now.Add(tokenLifetime))
	iss := startIssuerT(t, token, "http://127.0.0.1:1", delay)

	start := time.Now()
	resp, err := http.Get(iss.tokenURL("http://127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if took := time.Since(start); took < delay {
		t.Errorf("answered after %v, want at least the %v delay", took, delay)
	}
	if resp.StatusCode != http.StatusOK || string(body) != token {
		t.Fatalf("got status %d and %d bytes, want 200 and the token", resp.StatusCode, len(body))
	}
	exp, err := warmpool.JWTExpiry(string(body))
	if err != nil {
		t.Fatal(err)
	}
	if d := exp.Sub(now); d < tokenLifetime-time.Second || d > tokenLifetime+time.Second {
		t.Errorf("exp %v after minting, want %v", d, tokenLifetime)
	}

	for _, c := range []struct {
		name, method, url string
		want              int
	}{
		{"other audience", http.MethodGet, iss.tokenURL("http://127.0.0.1:2"), http.StatusBadRequest},
		{"no audience", http.MethodGet, iss.url, http.StatusBadRequest},
		{"POST", http.MethodPost, iss.tokenURL("http://127.0.0.1:1"), http.StatusMethodNotAllowed},
		{"other path", http.MethodGet, strings.TrimSuffix(iss.url, "/token") + "/nope", http.StatusNotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, c.url, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Errorf("got status %d, want %d", resp.StatusCode, c.want)
			}
		})
	}
	http.DefaultClient.CloseIdleConnections()
	if got := iss.fetchCount(); got != 1 {
		t.Errorf("fetches: got %d, want 1 (rejected ones do not count)", got)
	}
	if got := iss.rejected.Load(); got != 4 {
		t.Errorf("rejected: got %d, want 4", got)
	}
}

func TestIssuerCloseEndsWaitingFetch(t *testing.T) {
	iss, err := startIssuer("t.o.k", "a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	f := newTokenFetcher(iss, "a")
	errc := make(chan error, 1)
	go func() {
		_, err := f.Token(context.Background())
		errc <- err
	}()
	for iss.conns.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	iss.close()
	iss.close() // twice is fine
	select {
	case err := <-errc:
		if err == nil {
			t.Error("fetch during close: got a token, want an error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("fetch still waiting 5s after close")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("close took %v", took)
	}
	if n := iss.fetchCount(); n != 0 {
		t.Errorf("fetches: got %d, want 0", n)
	}
}

func TestTokenFetcherNewConnectionPerFetch(t *testing.T) {
	const delay = 2 * time.Millisecond
	now := time.Now()
	token := mintJWT(now, now.Add(tokenLifetime))
	iss := startIssuerT(t, token, "aud", delay)
	f := newTokenFetcher(iss, "aud")

	// The request's httptrace (the runner's) must not see the fetch.
	var traced atomic.Int64
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { traced.Add(1) },
	})
	for range 3 {
		tok, err := f.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if tok.Value != token || tok.Expiry.Unix() != now.Add(tokenLifetime).Unix() {
			t.Fatalf("got %v, want the issued token with its exp", tok)
		}
	}
	calls, spent := f.spent()
	if calls != 3 || iss.fetchCount() != 3 || spent < 3*delay {
		t.Errorf("got %d calls taking %v, issuer %d fetches; want 3, at least %v, 3", calls, spent, iss.fetchCount(), 3*delay)
	}
	if n := iss.conns.Load(); n != 3 {
		t.Errorf("issuer accepted %d connections, want one per fetch: 3", n)
	}
	if n := traced.Load(); n != 0 {
		t.Errorf("the request's trace saw %d connections of the fetch, want 0", n)
	}

	other := newTokenFetcher(iss, "another audience")
	if _, err := other.Token(context.Background()); err == nil || !strings.Contains(err.Error(), "status 400") || strings.Contains(err.Error(), token) {
		t.Errorf("wrong audience: got %v, want a status 400 error without the token", err)
	}
}

func TestNewClientTokenWiring(t *testing.T) {
	iss := startIssuerT(t, "t.o.k", "aud", 0)
	tgt := &target{proto: ProtoHTTP, url: "http://127.0.0.1:1/answer", token: "t.o.k", issuer: iss, audience: "aud"}
	for _, c := range []struct {
		mode, tokenMode string
		want            string // who sets Authorization
	}{
		{ModeTuned, TokenNone, "template"},
		{ModeWarmpool, TokenNone, "warmpool"},
		{ModeTuned, TokenPerRequest, "fetcher"},
		{ModePerRequest, TokenPerRequest, "fetcher"},
		{ModeWarmpool, TokenPerRequest, "fetcher"},
		{ModeTuned, TokenCached, "cache"},
		{ModeDefault, TokenCached, "cache"},
		{ModeWarmpool, TokenCached, "warmpool"},
	} {
		t.Run(c.mode+"/"+c.tokenMode, func(t *testing.T) {
			var tok *tokenFetcher
			if c.tokenMode != TokenNone {
				tok = newTokenFetcher(iss, "aud")
			}
			cl, err := newClient(c.mode, tgt, Settings{Concurrency: 2, TokenMode: c.tokenMode}, tok)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.close()
			got := "template"
			switch x := cl.(type) {
			case *authClient:
				switch x.src.(type) {
				case *tokenFetcher:
					got = "fetcher"
				case *warmpool.TokenCache:
					got = "cache"
				default:
					got = "?"
				}
				if _, ok := x.client.(*authClient); ok {
					got += " twice"
				}
				if x.client.setsAuth() {
					got += ", and the client too"
				}
			case *warmpoolClient:
				if x.setsAuth() {
					got = "warmpool"
				}
			}
			if got != c.want {
				t.Errorf("Authorization set by %s, want %s", got, c.want)
			}
			if want := c.want != "template"; cl.setsAuth() != want {
				t.Errorf("setsAuth: got %v, want %v", cl.setsAuth(), want)
			}
		})
	}
}

func TestRunTokenPerRequest(t *testing.T) {
	const n = 30
	modes := []string{ModePerRequest, ModeTuned, ModeWarmpool, ModeWarmpoolH2}
	rep := runT(t, Settings{
		Protos: []string{ProtoHTTP, ProtoTLS}, Modes: modes, Concurrency: 3, Requests: n, Duration: time.Minute,
		TokenMode: TokenPerRequest, TokenFetch: time.Millisecond,
	})
	if s := rep.Settings; s.TokenMode != TokenPerRequest || s.TokenFetchMs != 1 {
		t.Errorf("settings: got token mode %q, fetch %vms; want per-request, 1ms", s.TokenMode, s.TokenFetchMs)
	}
	for _, p := range rep.Protos {
		for _, m := range p.Modes {
			if m.OK != n || m.Errors.Total != 0 {
				t.Errorf("%s over %s: %d ok, errors %v; want %d ok: the server accepts the issued token", m.Mode, p.Proto, m.OK, m.ErrorSamples, n)
			}
			x := m.Token
			if x == nil {
				t.Fatalf("%s over %s: no token figures", m.Mode, p.Proto)
			}
			if x.IssuerFetches != n {
				t.Errorf("%s over %s: %d issuer fetches for %d requests, want one each", m.Mode, p.Proto, x.IssuerFetches, n)
			}
			if x.FetchUsMean < 1000 || x.FetchUsPerRequest < 1000 {
				t.Errorf("%s over %s: fetch %vµs mean, %vµs per request; want at least the 1ms delay", m.Mode, p.Proto, x.FetchUsMean, x.FetchUsPerRequest)
			}
		}
	}
	// Bounded by time, the fetches are the requests sent: those answered,
	// and those in flight at the stop that had their token.
	rep = runT(t, Settings{Protos: []string{ProtoHTTP}, Modes: []string{ModeWarmpool}, Concurrency: 3, Duration: 150 * time.Millisecond, TokenMode: TokenPerRequest})
	m := modeOf(t, rep, ProtoHTTP, ModeWarmpool)
	if f := m.Token.IssuerFetches; m.OK == 0 || f < m.Requests || f > m.Requests+m.CancelledAtStop {
		t.Errorf("%d fetches for %d requests (%d ok, %d cancelled at stop), want one per request", f, m.Requests, m.OK, m.CancelledAtStop)
	}
}

func TestRunTokenCached(t *testing.T) {
	modes := []string{ModePerRequest, ModeDefault, ModeTuned, ModeWarmpool}
	rep := runT(t, Settings{Protos: []string{ProtoHTTP}, Modes: modes, Concurrency: 4, Duration: 200 * time.Millisecond, TokenMode: TokenCached})
	var total int64
	for _, mode := range modes {
		m := modeOf(t, rep, ProtoHTTP, mode)
		if m.OK == 0 || m.Errors.Total != 0 {
			t.Errorf("%s: %d ok, errors %v", mode, m.OK, m.ErrorSamples)
		}
		if m.Token == nil || m.Token.IssuerFetches != 1 {
			t.Errorf("%s: token %+v, want 1 issuer fetch: one per client", mode, m.Token)
			continue
		}
		if m.Token.FetchUsMean < float64(DefaultTokenFetch.Microseconds()) {
			t.Errorf("%s: fetch mean %vµs, want at least the default %v", mode, m.Token.FetchUsMean, DefaultTokenFetch)
		}
		total += m.Token.IssuerFetches
	}
	if total > int64(len(modes)) {
		t.Errorf("%d fetches in all, want at most one per mode (%d)", total, len(modes))
	}
	if s := rep.Settings; s.TokenMode != TokenCached || s.TokenFetchMs != 5 {
		t.Errorf("settings: got token mode %q, fetch %vms; want cached, the default 5ms", s.TokenMode, s.TokenFetchMs)
	}

	// A new client per round: a fetch per round.
	rep = runT(t, Settings{Protos: []string{ProtoHTTP}, Modes: []string{ModeTuned, ModeWarmpool}, Concurrency: 2, Requests: 20, Rounds: 2, Duration: time.Minute, TokenMode: TokenCached, TokenFetch: time.Millisecond})
	for _, mode := range []string{ModeTuned, ModeWarmpool} {
		if m := modeOf(t, rep, ProtoHTTP, mode); m.OK != 20 || m.Token == nil || m.Token.IssuerFetches != 2 {
			t.Errorf("%s over 2 rounds: %d ok, token %+v; want 20 ok and 2 fetches", mode, m.OK, m.Token)
		}
	}
}

func TestRunTokenNone(t *testing.T) {
	rep := runT(t, Settings{Protos: []string{ProtoHTTP}, Modes: []string{ModeWarmpool}, Concurrency: 2, Requests: 10, Duration: time.Minute})
	if s := rep.Settings; s.TokenMode != TokenNone || s.TokenFetchMs != 0 {
		t.Errorf("settings: got token mode %q, fetch %vms; want none, 0", s.TokenMode, s.TokenFetchMs)
	}
	if m := modeOf(t, rep, ProtoHTTP, ModeWarmpool); m.Token != nil || m.OK != 10 {
		t.Errorf("got %d ok, token %+v; want 10 ok and no token figures", m.OK, m.Token)
	}
}
