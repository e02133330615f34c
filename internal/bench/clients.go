package bench

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/warmpool/warmpool"
)

// client sends one mode's requests.
type client interface {
	// do sends req; the caller reads the body to the end and closes it.
	do(req *http.Request) (*http.Response, error)
	// close closes every connection the client holds.
	close()
	// pool returns warmpool's own figures, or nil for other clients.
	pool() *PoolSummary
	// setsAuth reports whether the client adds the Authorization header
	// itself; otherwise each request carries it.
	setsAuth() bool
	// countsItself reports whether the client measures reuse, dials and
	// TLS handshakes itself (pool), so the runner adds no httptrace of its
	// own: a second trace on a request that already has one makes net/http
	// merge the two by reflection, a cost the other clients would not pay.
	countsItself() bool
}

// Timeouts of the bare clients that mirror warmpool's defaults (tuned, and the
// Go benchmarks' bare client).
const (
	bareRequestTimeout = 30 * time.Second
	bareDialTimeout    = 10 * time.Second
	bareIdleTimeout    = 30 * time.Second
)

// newClient builds the client of mode for target t. With a token fetcher
// (-token-mode per-request or cached) its requests carry the fetcher's
// tokens, as s.TokenMode says; without, t's static token.
//
// warmpool wraps every token source it is given, other than a
// *warmpool.TokenCache, in a cache (WithTokenSource), and a TokenCache fetches
// once per lifetime, or in the background when one is due: no source makes
// warmpool fetch on every request. So in per-request mode warmpool gets no
// token source, and the header is set per request before Do, as for the other
// modes; warmpool sends a caller's Authorization header as it is.
func newClient(mode string, t *target, s Settings, tok *tokenFetcher) (client, error) {
	c, err := newBareOrPool(mode, t, s, tok)
	switch {
	case err != nil:
		return nil, err
	case tok == nil || c.setsAuth(): // a static token, or warmpool's own cache
		return c, nil
	case s.TokenMode == TokenCached:
		return &authClient{client: c, src: warmpool.CachedTokenSource(tok, cacheRefreshBefore)}, nil
	}
	return &authClient{client: c, src: tok}, nil
}

// newBareOrPool builds the client of mode; a warmpool client gets the token
// source only in cached mode.
func newBareOrPool(mode string, t *target, s Settings, tok *tokenFetcher) (client, error) {
	switch mode {
	case ModePerRequest:
		return &perRequestClient{tls: t.tls}, nil
	case ModeDefault:
		return &bareClient{hc: &http.Client{Transport: defaultTransport(t.tls)}}, nil
	case ModeDefaultH1:
		tr := defaultTransport(t.tls)
		var h1 http.Protocols
		h1.SetHTTP1(true)
		tr.Protocols = &h1
		return &bareClient{hc: &http.Client{Transport: tr}}, nil
	case ModeTuned:
		n := s.Concurrency + TunedHeadroom
		return &bareClient{hc: &http.Client{Timeout: bareRequestTimeout, Transport: tunedTransport(t.tls, n)}}, nil
	case ModeWarmpool, ModeWarmpoolH2:
		cfg := warmpool.DefaultConfig()
		if s.Config != nil {
			cfg = *s.Config
		}
		cfg.DisableHTTP2, cfg.H2C = true, false
		if mode == ModeWarmpoolH2 {
			cfg.DisableHTTP2 = false
			cfg.H2C = t.proto == ProtoH2C
		}
		var opts []warmpool.Option
		switch {
		case tok != nil && s.TokenMode == TokenCached:
			opts = append(opts, warmpool.WithTokenSource(warmpool.TokenSourceFunc(tok.Token))) // cached by warmpool
		case tok != nil: // per-request: newClient sets the header
		case t.token != "":
			opts = append(opts, warmpool.WithTokenSource(warmpool.StaticToken(t.token)))
		}
		if t.tls != nil {
			opts = append(opts, warmpool.WithTLSConfig(t.tls))
		}
		c, err := warmpool.New(cfg, opts...)
		if err != nil {
			return nil, fmt.Errorf("mode %s: %w", mode, err)
		}
		return &warmpoolClient{c: c, auth: tok == nil || s.TokenMode == TokenCached}, nil
	}
	return nil, fmt.Errorf("unknown mode %q", mode)
}

// defaultTransport is what http.DefaultClient uses, cloned so that runs share
// no connections, with the target's TLS settings (which keeps HTTP/2 on:
// DefaultTransport has ForceAttemptHTTP2).
func defaultTransport(tlsCfg *tls.Config) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if tlsCfg != nil {
		tr.TLSClientConfig = tlsCfg.Clone()
	}
	return tr
}

// tunedTransport is net/http tuned by hand for n concurrent requests to one
// host over HTTP/1.1, with warmpool's default timeouts.
func tunedTransport(tlsCfg *tls.Config, n int) *http.Transport {
	var protos http.Protocols
	protos.SetHTTP1(true)
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: bareDialTimeout, KeepAlive: 15 * time.Second}).DialContext,
		TLSHandshakeTimeout:   bareDialTimeout,
		MaxIdleConnsPerHost:   n,
		MaxConnsPerHost:       n,
		IdleConnTimeout:       bareIdleTimeout,
		ExpectContinueTimeout: time.Second,
		Protocols:             &protos,
	}
	if tlsCfg != nil {
		tr.TLSClientConfig = tlsCfg.Clone()
	}
	return tr
}

// bareClient is an http.Client of the default or tuned mode.
type bareClient struct{ hc *http.Client }

func (c *bareClient) do(req *http.Request) (*http.Response, error) { return c.hc.Do(req) }
func (c *bareClient) close()                                       { c.hc.CloseIdleConnections() }
func (c *bareClient) pool() *PoolSummary                           { return nil }
func (c *bareClient) countsItself() bool                           { return false }
func (c *bareClient) setsAuth() bool                               { return false }

// perRequestClient makes a client and transport per request, as code that
// writes "client := &http.Client{...}" inside its handler does, and closes
// the transport's connections once the body is closed.
type perRequestClient struct{ tls *tls.Config }

func (c *perRequestClient) do(req *http.Request) (*http.Response, error) {
	tr := defaultTransport(c.tls)
	hc := &http.Client{Transport: tr, Timeout: bareRequestTimeout}
	resp, err := hc.Do(req)
	if err != nil {
		tr.CloseIdleConnections()
		return nil, err
	}
	resp.Body = &closeTransport{ReadCloser: resp.Body, tr: tr}
	return resp, nil
}

func (c *perRequestClient) close()             {}
func (c *perRequestClient) pool() *PoolSummary { return nil }
func (c *perRequestClient) countsItself() bool { return false }
func (c *perRequestClient) setsAuth() bool     { return false }

// closeTransport closes its transport's connections after the body.
type closeTransport struct {
	io.ReadCloser
	tr *http.Transport
}

func (b *closeTransport) Close() error {
	err := b.ReadCloser.Close()
	b.tr.CloseIdleConnections()
	return err
}

// warmpoolClient is a warmpool.Client; its token source adds Authorization,
// unless it has none (auth false).
type warmpoolClient struct {
	c    *warmpool.Client
	auth bool
}

func (c *warmpoolClient) do(req *http.Request) (*http.Response, error) { return c.c.Do(req) }
func (c *warmpoolClient) close()                                       { c.c.Close() }
func (c *warmpoolClient) setsAuth() bool                               { return c.auth }
func (c *warmpoolClient) countsItself() bool                           { return true }

func (c *warmpoolClient) pool() *PoolSummary { return newPoolSummary(c.c) }
