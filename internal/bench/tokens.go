package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/warmpool/warmpool"
)

// Token modes: where each request's bearer token comes from.
const (
	// TokenNone sends one static token, set in every request (warmpool:
	// StaticToken). It measures the clients alone.
	TokenNone = "none"
	// TokenPerRequest fetches a fresh token from the issuer before every
	// request, over a new http.Client and transport each time, as a frontend
	// that calls its id-token helper before every backend call does. Every
	// mode sets the Authorization header itself; warmpool gets no token
	// source, since warmpool caches whatever source it is given (see
	// newClient).
	TokenPerRequest = "per-request"
	// TokenCached fetches through a cache, once per token lifetime: warmpool
	// modes pass the fetching source to warmpool.WithTokenSource, which
	// caches it; the other modes share one warmpool.CachedTokenSource per
	// client between all workers and set the header per request.
	TokenCached = "cached"
)

// TokenModes lists the token modes.
var TokenModes = []string{TokenNone, TokenPerRequest, TokenCached}

// Bounds of Settings.TokenFetch.
const (
	DefaultTokenFetch = 5 * time.Millisecond
	MaxTokenFetch     = 10 * time.Second
)

// cacheRefreshBefore is the refresh-ahead of the bare modes' token cache:
// warmpool's default, so both caches behave alike.
const cacheRefreshBefore = 5 * time.Minute

// maxTokenBytes bounds the issuer's answer.
const maxTokenBytes = 64 << 10

// tokenFetcher is a warmpool.TokenSource that fetches a token from the
// issuer on every call, over a new http.Client and transport that it closes
// after: a new connection per fetch, as a helper that builds its HTTP session
// per call makes. It times its fetches. Safe for concurrent use.
type tokenFetcher struct {
	url     string // the issuer's URL with the audience
	timeout time.Duration
	calls   atomic.Int64 // fetches attempted
	nanos   atomic.Int64 // time spent in them
}

func newTokenFetcher(iss *tokenIssuer, audience string) *tokenFetcher {
	return &tokenFetcher{url: iss.tokenURL(audience), timeout: bareRequestTimeout}
}

// Token fetches a token. Errors do not contain it.
func (f *tokenFetcher) Token(ctx context.Context) (warmpool.Token, error) {
	start := time.Now()
	defer func() {
		f.nanos.Add(int64(time.Since(start)))
		f.calls.Add(1)
	}()
	tr := defaultTransport(nil)
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: f.timeout}
	req, err := http.NewRequestWithContext(withoutValues{ctx}, http.MethodGet, f.url, nil)
	if err != nil {
		return warmpool.Token{}, fmt.Errorf("token issuer: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return warmpool.Token{}, fmt.Errorf("token issuer: %w", err)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenBytes))
	resp.Body.Close()
	switch {
	case err != nil:
		return warmpool.Token{}, fmt.Errorf("token issuer: reading the token: %w", err)
	case resp.StatusCode != http.StatusOK:
		return warmpool.Token{}, fmt.Errorf("token issuer: status %d", resp.StatusCode)
	}
	value := strings.TrimSpace(string(body))
	exp, err := warmpool.JWTExpiry(value)
	if err != nil {
		return warmpool.Token{}, fmt.Errorf("token issuer: %w", err)
	}
	return warmpool.Token{Value: value, Expiry: exp}, nil
}

// withoutValues is a context without its parent's values, but with its
// deadline and cancellation. The request's context carries the runner's
// httptrace, which would count the fetch's connection as the request's.
type withoutValues struct{ context.Context }

func (withoutValues) Value(any) any { return nil }

// spent returns the fetches attempted and the time they took.
func (f *tokenFetcher) spent() (calls int64, d time.Duration) {
	return f.calls.Load(), time.Duration(f.nanos.Load())
}

// authClient sets each request's Authorization header from src, then sends
// it with the client it wraps.
type authClient struct {
	client
	src warmpool.TokenSource
}

func (c *authClient) do(req *http.Request) (*http.Response, error) {
	tok, err := c.src.Token(req.Context())
	if err != nil {
		return nil, err
	}
	req.Header["Authorization"] = []string{"Bearer " + tok.Value}
	return c.client.do(req)
}

func (c *authClient) setsAuth() bool { return true }

// TokenResult is what the tokens of one run cost: with -token-mode
// per-request or cached.
type TokenResult struct {
	// IssuerFetches counts the tokens the issuer handed out during the run:
	// its own count.
	IssuerFetches int64 `json:"issuer_fetches"`
	// FetchUsMean is the mean time of one fetch on the client side: a new
	// connection, the request, the issuer's delay, the answer.
	FetchUsMean float64 `json:"fetch_us_mean"`
	// FetchUsPerRequest is the time spent fetching tokens ÷ requests.
	FetchUsPerRequest float64 `json:"fetch_us_per_request"`
}

// tokenFigures are what the fetches of a run cost, summed over its slices.
type tokenFigures struct {
	issued int64 // the issuer's count
	calls  int64 // the client's attempts
	spent  time.Duration
}

func (a *tokenFigures) plus(b *tokenFigures) *tokenFigures {
	if a == nil || b == nil {
		return b
	}
	return &tokenFigures{issued: a.issued + b.issued, calls: a.calls + b.calls, spent: a.spent + b.spent}
}

// result reports f for a run of requests requests.
func (f *tokenFigures) result(requests int64) *TokenResult {
	if f == nil {
		return nil
	}
	r := &TokenResult{IssuerFetches: f.issued}
	us := float64(f.spent.Nanoseconds()) / 1e3
	if f.calls > 0 {
		r.FetchUsMean = us / float64(f.calls)
	}
	if requests > 0 {
		r.FetchUsPerRequest = us / float64(requests)
	}
	return r
}
