package warmpool

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Client is a pooled, authenticated HTTP client for service-to-service calls.
// Create one per process and configuration with New, share it between all
// goroutines, and Close (or Shutdown) it when the process stops.
type Client struct {
	cfg    Config
	log    *slog.Logger
	tokens TokenSource // nil: no Authorization header is added

	dialer *dialer
	tr     *http.Transport
	hc     *http.Client

	timeoutErr *timeoutError
	auth       atomic.Pointer[authCache]

	// Lifecycle: inflight counts requests between begin and end; closing
	// refuses new ones; drained is signalled when inflight reaches zero
	// while closing.
	inflight  atomic.Int64
	closing   atomic.Bool
	drained   chan struct{}
	closeOnce sync.Once
}

// authCache keeps the Authorization header built for the last token, so the
// request path builds it once per token, not once per request.
type authCache struct {
	token  string
	header []string
}

// Option configures a Client beyond what Config holds: things that are code,
// not settings.
type Option func(*options)

type options struct {
	tokens TokenSource
	logger *slog.Logger
	tls    *tls.Config
}

// WithTokenSource makes the client send "Authorization: Bearer <token>" on
// every request that has no Authorization header of its own. Sources that
// are not already a *TokenCache are wrapped in CachedTokenSource with a one
// minute early refresh.
func WithTokenSource(ts TokenSource) Option {
	return func(o *options) { o.tokens = ts }
}

// WithLogger sets the logger for lifecycle events and warnings. Nil (the
// default) means silent. Tokens are never logged.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithTLSConfig sets the TLS configuration used for https targets, for
// example to trust a private CA or present a client certificate. It is
// cloned; MinVersion is raised to TLS 1.2 if lower.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(o *options) { o.tls = cfg }
}

// defaultRefreshBefore is how long before expiry a cached token is refreshed.
const defaultRefreshBefore = time.Minute

// New builds a Client from cfg. Zero fields of cfg take their defaults (see
// Config); the config is validated and copied, so later changes to cfg have
// no effect.
func New(cfg Config, opts ...Option) (*Client, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	c := &Client{
		cfg:        cfg,
		log:        o.logger,
		drained:    make(chan struct{}, 1),
		timeoutErr: &timeoutError{d: cfg.RequestTimeout},
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if o.tokens != nil {
		if _, ok := o.tokens.(*TokenCache); ok {
			c.tokens = o.tokens
		} else {
			c.tokens = CachedTokenSource(o.tokens, defaultRefreshBefore)
		}
	}

	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.tls != nil {
		tlsCfg = o.tls.Clone()
		if tlsCfg.MinVersion < tls.VersionTLS12 {
			tlsCfg.MinVersion = tls.VersionTLS12
		}
		if tlsCfg.InsecureSkipVerify {
			c.log.Warn("warmpool: TLS certificate verification is disabled; use only against test servers")
		}
	}

	c.dialer = &dialer{
		net: net.Dialer{
			Timeout: cfg.ConnectionTimeout,
			KeepAliveConfig: net.KeepAliveConfig{
				Enable: true, Idle: 15 * time.Second, Interval: 5 * time.Second, Count: 3,
			},
		},
		now:        time.Now,
		idleExpiry: cfg.KeepaliveExpiry,
	}
	c.tr = newTransport(cfg, c.dialer, tlsCfg)
	c.hc = &http.Client{Transport: &roundTripper{c: c, tr: c.tr}}
	return c, nil
}

// newTransport maps Config onto net/http. MaxIdleConnsPerHost is
// max_connections, not max_keepalive_connections: idle retention follows
// demand (see Config.MaxKeepaliveConnections), so a steady load at any
// concurrency up to max_connections never closes and reopens connections.
func newTransport(cfg Config, d *dialer, tlsCfg *tls.Config) *http.Transport {
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(cfg.EnableHTTP2)
	if cfg.H2C {
		// Prior knowledge: with HTTP1 also set, net/http would use
		// HTTP/1.1 for http:// URLs.
		protos.SetHTTP1(false)
		protos.SetUnencryptedHTTP2(true)
		protos.SetHTTP2(true)
	}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   cfg.ConnectionTimeout,
		MaxIdleConns:          0, // no global cap; per host below
		MaxIdleConnsPerHost:   cfg.MaxConnections,
		MaxConnsPerHost:       cfg.MaxConnections,
		IdleConnTimeout:       cfg.KeepaliveExpiry,
		ExpectContinueTimeout: time.Second,
		Protocols:             &protos,
		HTTP2: &http.HTTP2Config{
			SendPingTimeout: 15 * time.Second,
			PingTimeout:     cfg.ConnectionTimeout,
		},
	}
}

// Config returns the configuration in effect, defaults filled in.
func (c *Client) Config() Config { return c.cfg }

// HTTPClient returns a standard *http.Client that shares this client's pool,
// token, timeouts and limits, for libraries that take one (SDKs, oauth2,
// otelhttp). It follows redirects as net/http does; the token is added only
// to the original request, and net/http drops it on redirects to another
// host. Closing the Client closes it too.
func (c *Client) HTTPClient() *http.Client { return c.hc }

// Do sends req through the pool: it adds the bearer token unless req has an
// Authorization header, bounds the attempt by request_timeout (including
// reading the body) and the wait for a connection by pool_timeout, and caps
// the body at max_response_bytes. As with http.Client, the caller must close
// the response body; reading it to the end lets the connection be reused.
// req is not modified. This version makes a single attempt (no retries).
func (c *Client) Do(req *http.Request) (*http.Response, error) {
	return c.hc.Do(req)
}

// PostJSON encodes in as JSON, POSTs it to url with the bearer token, and
// decodes a 2xx JSON answer into out (out may be nil to discard it).
//
// A non-2xx answer returns *StatusError; a 2xx that is not JSON returns
// *ContentTypeError; a body over max_response_bytes returns an error
// matching ErrResponseTooLarge. In every case the body is drained (bounded)
// and closed, so the connection goes back to the pool whenever it can.
func (c *Client) PostJSON(ctx context.Context, url string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("warmpool: encoding request for %s: %w", redactURL(url), err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("warmpool: %w", err)
	}
	req.Header["Content-Type"] = jsonContentType
	req.Header["Accept"] = jsonContentType
	if c.tokens != nil {
		auth, err := c.authHeader(ctx, req.URL)
		if err != nil {
			return err
		}
		req.Header["Authorization"] = auth
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer drainAndClose(resp.Body)

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return c.statusError(req, resp)
	}
	if !isJSON(resp.Header.Get("Content-Type")) {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return &ContentTypeError{
			StatusCode:  resp.StatusCode,
			ContentType: resp.Header.Get("Content-Type"),
			URL:         redactURL(url),
			Body:        c.redact(b),
		}
	}
	if out == nil {
		return nil
	}
	dec := json.NewDecoder(resp.Body)
	if err := dec.Decode(out); err != nil {
		if errors.Is(err, ErrResponseTooLarge) {
			return err
		}
		return fmt.Errorf("warmpool: decoding JSON from %s: %w", redactURL(url), err)
	}
	return nil
}

var jsonContentType = []string{"application/json"}

func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// statusError reads a capped excerpt of a non-2xx body into a StatusError.
func (c *Client) statusError(req *http.Request, resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return &StatusError{
		StatusCode: resp.StatusCode,
		Method:     req.Method,
		URL:        redactURL(req.URL.String()),
		Body:       c.redact(b),
	}
}

// maxDrain bounds how much of an unread body is read to keep its connection;
// a longer remainder costs more than a new connection, so it is closed.
const maxDrain = 64 << 10

func drainAndClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxDrain))
	body.Close()
}

// authHeader returns the Authorization header value for a request to u.
func (c *Client) authHeader(ctx context.Context, u *url.URL) ([]string, error) {
	if u.Scheme == "http" && !c.cfg.AllowInsecureToken && !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("warmpool: refusing to send a bearer token over plain http to %s; use https or set allow_insecure_token: true", u.Host)
	}
	tok, err := c.tokens.Token(ctx)
	if err != nil {
		return nil, err
	}
	if a := c.auth.Load(); a != nil && a.token == tok.Value {
		return a.header, nil
	}
	a := &authCache{token: tok.Value, header: []string{"Bearer " + tok.Value}}
	c.auth.Store(a)
	return a.header, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redact removes the current token from b, for bodies that echo headers.
func (c *Client) redact(b []byte) []byte {
	if a := c.auth.Load(); a != nil && a.token != "" {
		b = bytes.ReplaceAll(b, []byte(a.token), []byte("[REDACTED]"))
	}
	return b
}

// redactURL drops user info and query (which may carry credentials).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<invalid URL>"
	}
	u.User = nil
	u.RawQuery = ""
	u.ForceQuery = false
	u.Fragment = ""
	return u.String()
}

// begin admits a request unless the client is closing.
func (c *Client) begin() bool {
	c.inflight.Add(1)
	if c.closing.Load() {
		c.end()
		return false
	}
	return true
}

func (c *Client) end() {
	if c.inflight.Add(-1) == 0 && c.closing.Load() {
		select {
		case c.drained <- struct{}{}:
		default:
		}
	}
}

// Close closes the client at once: new requests fail with ErrClosed and
// every connection, idle or in use, is closed (in-flight requests fail).
// It is idempotent and safe to call concurrently. Use Shutdown to let
// in-flight requests finish first.
func (c *Client) Close() error {
	c.closing.Store(true)
	c.closeOnce.Do(func() {
		c.dialer.closed.Store(true)
		c.dialer.closeAll(closeClient)
		c.tr.CloseIdleConnections()
		c.log.Debug("warmpool: client closed")
	})
	return nil
}

// Shutdown stops new requests (they get ErrClosed), waits for in-flight
// requests to finish (bodies closed), then closes every connection. If ctx
// ends first, it closes at once and returns ctx's error.
func (c *Client) Shutdown(ctx context.Context) error {
	c.closing.Store(true)
	for c.inflight.Load() > 0 {
		select {
		case <-c.drained:
		case <-ctx.Done():
			c.Close()
			return fmt.Errorf("warmpool: shutdown: %d requests still in flight: %w", c.inflight.Load(), context.Cause(ctx))
		}
	}
	return c.Close()
}
