package warmpool

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// WithTokenSourceFor gives the client a token per target origin, for a
// client that calls several backends each with its own audience (Cloud Run,
// IAP). newSource is called once per origin ("https://host[:port]", the
// audience) on first use; each source is cached independently. It overrides
// WithTokenSource.
func WithTokenSourceFor(newSource func(audience string) TokenSource) Option {
	return func(o *options) { o.tokenFor = newSource }
}

// tokens routes each request to the cached source for its origin.
type tokens struct {
	single  *originTokens                     // WithTokenSource: one source for every origin
	newFor  func(audience string) TokenSource // WithTokenSourceFor
	origins sync.Map                          // URL host -> *originTokens
	mu      sync.Mutex
}

// originTokens is one cached source and the header last built from it.
type originTokens struct {
	cache  *TokenCache
	header atomic.Pointer[authCache]
}

// authCache keeps the Authorization header built for the last token, so the
// request path builds it once per token, not once per request.
type authCache struct {
	token  string
	header []string
}

func newTokens(o options) *tokens {
	switch {
	case o.tokenFor != nil:
		return &tokens{newFor: o.tokenFor}
	case o.tokens != nil:
		return &tokens{single: &originTokens{cache: asCache(o.tokens)}}
	}
	return nil
}

func asCache(ts TokenSource) *TokenCache {
	if tc, ok := ts.(*TokenCache); ok {
		return tc
	}
	return CachedTokenSource(ts, defaultRefreshBefore)
}

// forURL returns the source for u's origin.
func (t *tokens) forURL(u *url.URL) *originTokens {
	if t.single != nil {
		return t.single
	}
	if o, ok := t.origins.Load(u.Host); ok { // keyed by host: no allocation
		return o.(*originTokens)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if o, ok := t.origins.Load(u.Host); ok {
		return o.(*originTokens)
	}
	o := &originTokens{cache: asCache(t.newFor(u.Scheme + "://" + u.Host))}
	t.origins.Store(u.Host, o)
	return o
}

// fetchStats sums the fetch counters of every cache.
func (t *tokens) fetchStats() (fetches, failures int64) {
	if t.single != nil {
		return t.single.cache.FetchStats()
	}
	t.origins.Range(func(_, v any) bool {
		f, e := v.(*originTokens).cache.FetchStats()
		fetches += f
		failures += e
		return true
	})
	return
}

// authHeader returns the Authorization header value for a request to u.
func (c *Client) authHeader(ctx context.Context, u *url.URL) ([]string, error) {
	if u.Scheme == "http" && !c.cfg.AllowInsecureToken && !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("warmpool: refusing to send a bearer token over plain http to %s; use https or set allow_insecure_token: true", u.Host)
	}
	o := c.tokens.forURL(u)
	tok, err := o.cache.Token(ctx)
	if err != nil {
		return nil, err
	}
	if a := o.header.Load(); a != nil && a.token == tok.Value {
		return a.header, nil
	}
	a := &authCache{token: tok.Value, header: []string{"Bearer " + tok.Value}}
	o.header.Store(a)
	c.lastToken.Store(a)
	return a.header, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// defaultRefreshBefore is how long before expiry a cached token is
// refreshed: Google's libraries refresh ID tokens about as early.
const defaultRefreshBefore = 5 * time.Minute
