package warmpool

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warmpool/warmpool/internal/redact"
)

// Client is a pooled, authenticated HTTP client for service-to-service calls.
// Create one per process and configuration with New, share it between all
// goroutines, and Close (or Shutdown) it when the process stops.
type Client struct {
	cfg    Config
	log    *slog.Logger
	tokens *tokens // nil: no Authorization header is added

	pools    *poolSet // one pool per dialed address (pool.go)
	dialer   *dialer
	tr       *http.Transport
	routes   *routes // host names to endpoints (endpoints.go)
	rt       *roundTripper
	hc       *http.Client // the client Do and the JSON calls use; HTTPClient hands out copies
	idemKeys bool
	header   http.Header // default headers: the User-Agent and Config.Headers

	hedge          *hedger // nil: hedging off
	deadlineHeader string  // WithDeadlineHeader; "": off

	timeoutErr *timeoutError
	hooks      Hooks
	history    *debugHistory // the last five minutes, for DebugHandler (debug_history.go)
	budget     budget
	now        func() time.Time // the clock, handed down to every part (withClock in tests)
	rand       func() float64   // jitter source in [0,1)

	// Lifecycle: inflight counts requests between begin and end; closing
	// refuses new ones; drained is signalled when inflight reaches zero
	// while closing.
	inflight    atomic.Int64
	calls       atomic.Int64 // calls made (Do, the JSON calls, HTTPClient), each counted once
	callsFailed atomic.Int64 // of those, calls that ended in an error
	closing     atomic.Bool
	drained     chan struct{}
	done        chan struct{} // closed by Close: ends retry waits and the janitor
	closeOnce   sync.Once
	bg          sync.WaitGroup // background goroutines owned by the client
}

// New builds a Client from cfg. Zero fields of cfg take their defaults (see
// Config); the config is validated and copied, so later changes to cfg have
// no effect.
func New(cfg Config, opts ...Option) (*Client, error) {
	cfg = cfg.WithDefaults()
	cfg.Headers = maps.Clone(cfg.Headers)
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
		done:       make(chan struct{}),
		timeoutErr: &timeoutError{d: cfg.RequestTimeout},
		hooks:      o.hooks,
		now:        o.clock,
		rand:       jitter,
		idemKeys:   o.idemKeys,
		hedge:      newHedger(cfg),

		deadlineHeader: o.deadline,
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.history = newDebugHistory(c)
	c.budget = budget{percent: max(cfg.RetryBudgetPercent, 0), perSecond: max(cfg.RetryBudgetMinPerSecond, 0), start: c.now()}
	if c.log == nil {
		c.log = slog.Default()
	}
	c.header = defaultHeader(cfg)
	if o.tokens == nil && o.tokenFor == nil {
		// No token option: the auth block of the config decides.
		opt, err := cfg.Auth.Option()
		if err != nil {
			return nil, err
		}
		opt(&o)
	}
	c.tokens = newTokens(o)

	c.pools = &poolSet{env: newPoolEnv(cfg, c)}
	c.dialer = newDialer(cfg, clientTLS(o.tls, c.log), c.pools)
	c.tr = newTransport(cfg, c.dialer)
	var next http.RoundTripper = c.tr
	for _, mw := range o.middleware {
		next = mw(next)
	}
	c.rt = &roundTripper{c: c, next: next}
	c.routes = newRoutes(c, o)
	c.hc = &http.Client{Transport: c.rt}
	c.startJanitor()
	return c, nil
}

// clientTLS is the TLS configuration of the client's dials: the option's,
// cloned, at least TLS 1.2, or the defaults.
func clientTLS(opt *tls.Config, log *slog.Logger) *tls.Config {
	if opt == nil {
		return &tls.Config{MinVersion: tls.VersionTLS12}
	}
	cfg := opt.Clone()
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	if cfg.InsecureSkipVerify {
		log.Warn("warmpool: TLS certificate verification is disabled; use only against test servers")
	}
	return cfg
}

// newTransport maps Config onto net/http. MaxIdleConnsPerHost is
// max_connections, not max_keepalive_connections: idle retention follows
// demand (see Config.MaxKeepaliveConnections), so a steady load at any
// concurrency up to max_connections never closes and reopens connections.
func newTransport(cfg Config, d *dialer) *http.Transport {
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(!cfg.DisableHTTP2)
	if cfg.H2C {
		// Prior knowledge: with HTTP1 also set, net/http would use
		// HTTP/1.1 for http:// URLs.
		protos.SetHTTP1(false)
		protos.SetUnencryptedHTTP2(true)
		protos.SetHTTP2(true)
	}
	// With DialTLSContext net/http leaves ALPN to the dialer.
	d.tls.NextProtos = nil
	if protos.HTTP2() {
		d.tls.NextProtos = append(d.tls.NextProtos, "h2")
	}
	if protos.HTTP1() {
		d.tls.NextProtos = append(d.tls.NextProtos, "http/1.1")
	}
	return &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         d.DialContext,
		DialTLSContext:      d.DialTLSContext,
		TLSClientConfig:     d.tls, // used for https through a proxy
		TLSHandshakeTimeout: cfg.ConnectionTimeout,
		MaxIdleConns:        0, // no global cap; per host below
		MaxIdleConnsPerHost: cfg.MaxConnections,
		// MaxConnsPerHost is left unset: the pool's dial gate enforces
		// max_connections, waiting at most pool_timeout (net/http's queue
		// for it has no timeout).
		IdleConnTimeout:       cfg.KeepaliveExpiry,
		ExpectContinueTimeout: time.Second,
		Protocols:             &protos,
		// Health pings find a dead HTTP/2 peer within about
		// connection_timeout instead of the minutes TCP would take.
		HTTP2: &http.HTTP2Config{
			SendPingTimeout: cfg.ConnectionTimeout / 2,
			PingTimeout:     cfg.ConnectionTimeout / 2,
		},
	}
}

// Config returns the configuration in effect, defaults filled in. It is a
// copy: changing it changes nothing in the client.
func (c *Client) Config() Config {
	cfg := c.cfg
	cfg.Headers = maps.Clone(cfg.Headers)
	return cfg
}

// HTTPClient returns a new standard *http.Client that shares this client's
// pool, token, timeouts, limits and retries, for libraries that take one
// (SDKs, oauth2). Each call returns a new *http.Client: the caller may set its
// Transport (to wrap it, as otelhttp does), Jar, CheckRedirect or Timeout
// without changing what Do and the JSON calls use. (To wrap the transport
// under every call, use WithTransportMiddleware.) It follows redirects as
// net/http does; the token is added to the original request and to
// same-origin redirects, and no Authorization, the client's or the caller's,
// follows a redirect to another origin (scheme, host and port). Closing the
// Client closes it too.
func (c *Client) HTTPClient() *http.Client { return &http.Client{Transport: c.rt} }

// Do sends req through the pool: it adds the bearer token unless req has an
// Authorization header, bounds the attempt by request_timeout (including
// reading the body) and the wait for a connection by pool_timeout, and caps
// the body at max_response_bytes. As with http.Client, the caller must close
// the response body; reading it to the end lets the connection be reused.
// req is not modified.
//
// Failed attempts are retried per max_retries when that is safe: connection
// failures before the request was sent and 408/429/503 answers for any
// method with a replayable body; resets, timeouts and 502/504 only for
// idempotent requests (GET, HEAD, OPTIONS, PUT, DELETE, or an
// Idempotency-Key header). When retries run out on a retryable status, the
// last response is returned as is.
func (c *Client) Do(req *http.Request) (*http.Response, error) {
	return c.hc.Do(req)
}

// PostJSON encodes in as JSON, POSTs it to url with the bearer token, and
// decodes a 2xx JSON answer into out (out may be nil to discard it). It is
// DoJSON with method POST.
//
// A non-2xx answer returns *StatusError; a 2xx that is not JSON returns
// *ContentTypeError; a body over max_response_bytes returns an error
// matching ErrResponseTooLarge. In every case the body is drained (bounded)
// and closed, so the connection goes back to the pool whenever it can.
func (c *Client) PostJSON(ctx context.Context, url string, in, out any) error {
	return c.DoJSON(ctx, http.MethodPost, url, in, out)
}

// DoJSON sends a request with any method (GET, PUT, PATCH, DELETE, POST…)
// through the pool, with in encoded as its JSON body (in nil: no body), and
// decodes a 2xx JSON answer into out (nil: discard it; a 204 or an empty
// body leaves out untouched). It returns the same errors as PostJSON.
// Idempotent methods are retried on more faults than POST is (see Do).
func (c *Client) DoJSON(ctx context.Context, method, url string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("warmpool: encoding request for %s: %w", redact.URL(url), err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return fmt.Errorf("warmpool: %w", err)
	}
	for k, v := range c.header {
		req.Header[k] = v // the request is ours: no copy per attempt for the defaults
	}
	if in != nil {
		req.Header["Content-Type"] = jsonContentType
	}
	req.Header["Accept"] = jsonContentType
	if c.idemKeys && !isIdempotent(req) {
		// One key per logical call, the same on every attempt, so a server
		// that deduplicates runs the call once however often it is retried.
		req.Header["Idempotency-Key"] = []string{rand.Text()}
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer drainAndClose(resp.Body)

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return c.statusError(req, resp)
	}
	if resp.StatusCode == http.StatusNoContent || resp.ContentLength == 0 {
		return nil
	}
	if !isJSON(resp.Header.Get("Content-Type")) {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return &ContentTypeError{
			StatusCode:  resp.StatusCode,
			ContentType: resp.Header.Get("Content-Type"),
			URL:         redact.URL(url),
			Body:        c.redact(req.URL, b),
		}
	}
	if out == nil {
		return nil
	}
	// Read whole, then decode: for the small answers of service calls this
	// is cheaper than a json.Decoder's buffering (max_response_bytes bounds
	// the read).
	b, err := readBody(resp)
	if err != nil {
		if errors.Is(err, ErrResponseTooLarge) || errors.Is(err, ErrClosed) {
			return err
		}
		return fmt.Errorf("warmpool: reading JSON from %s: %w", redact.URL(url), err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("warmpool: decoding JSON from %s: %w", redact.URL(url), err)
	}
	return nil
}

// readBody reads resp's body to the end, into a buffer of its
// Content-Length when the answer gives one.
func readBody(resp *http.Response) ([]byte, error) {
	if n := resp.ContentLength; n > 0 && n <= 1<<20 {
		b := make([]byte, n)
		if _, err := io.ReadFull(resp.Body, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	return io.ReadAll(resp.Body)
}

var jsonContentType = []string{"application/json"}

func isJSON(ct string) bool {
	if ct == "application/json" || strings.HasPrefix(ct, "application/json;") {
		return true // the common case, without parsing
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// statusError reads a capped excerpt of a non-2xx body into a StatusError.
func (c *Client) statusError(req *http.Request, resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	attempts := 1
	if b, ok := resp.Body.(*respBody); ok && b.a.attempts > 0 {
		attempts = b.a.attempts
	}
	return &StatusError{
		StatusCode: resp.StatusCode,
		Method:     req.Method,
		URL:        redact.URL(req.URL.String()),
		Body:       c.redact(req.URL, b),
		Attempts:   attempts,
	}
}

// maxDrain bounds how much of an unread body is read to keep its connection;
// a longer remainder costs more than a new connection, so it is closed.
const maxDrain = 64 << 10

func drainAndClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxDrain))
	body.Close()
}

// redact removes from b the token sent to u's origin, and any other
// "Bearer <token>", for bodies that echo request headers.
func (c *Client) redact(u *url.URL, b []byte) []byte {
	if c.tokens != nil {
		if a := c.tokens.forURL(u).header.Load(); a != nil && a.token != "" {
			b = bytes.ReplaceAll(b, []byte(a.token), []byte(redactedMark))
		}
	}
	return bearerRE.ReplaceAll(b, []byte("${1}"+redactedMark))
}

// bearerRE matches a bearer credential: the scheme and a token-like value of
// 16 or more characters, so prose such as "missing or invalid bearer token"
// is left as it is.
var bearerRE = regexp.MustCompile(`(?i)(bearer\s+)[A-Za-z0-9\-._~+/]{16,}=*`)

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
		close(c.done)
		c.bg.Wait()
		for _, p := range c.pools.all() {
			p.conns.closeAll(closeClient)
		}
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
