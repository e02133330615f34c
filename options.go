package warmpool

import (
	"crypto/tls"
	"log/slog"
	"net/http"
	"time"
)

// Option configures a Client beyond what Config holds: things that are code,
// not settings.
type Option func(*options)

type options struct {
	tokens     TokenSource
	tokenFor   func(audience string) TokenSource
	logger     *slog.Logger
	tls        *tls.Config
	hooks      Hooks
	idemKeys   bool
	middleware []func(http.RoundTripper) http.RoundTripper
	resolver   Resolver         // nil: the system resolver
	clock      func() time.Time // nil: time.Now; set by tests through withClock
	deadline   string           // WithDeadlineHeader
}

// WithDeadlineHeader makes every attempt carry the time it has left, so the
// backend can give up on work whose caller will no longer wait: the
// attempt's deadline (the caller's context's, or request_timeout's if
// sooner), as whole milliseconds in header name, such as
// "X-Request-Deadline" (the form of Envoy's x-envoy-expected-rq-timeout-ms),
// or in gRPC's form ("850m") when name is "grpc-timeout". Off by default.
func WithDeadlineHeader(name string) Option {
	return func(o *options) { o.deadline = http.CanonicalHeaderKey(name) }
}

// withClock makes the client read the time from now: the one clock of the
// client, handed down to its pools, dialer, budget and janitor.
func withClock(now func() time.Time) Option {
	return func(o *options) { o.clock = now }
}

// WithTokenSource makes the client send "Authorization: Bearer <token>" on
// every request that has no Authorization header of its own. Sources that
// are not already a *TokenCache are wrapped in CachedTokenSource, refreshed
// five minutes before expiry.
func WithTokenSource(ts TokenSource) Option {
	return func(o *options) { o.tokens = ts }
}

// WithTokenSourceFor gives the client a token per target origin, for a
// client that calls several backends each with its own audience (Cloud Run,
// IAP). newSource is called once per origin ("https://host[:port]", the
// audience) on first use; each source is cached independently. It overrides
// WithTokenSource.
func WithTokenSourceFor(newSource func(audience string) TokenSource) Option {
	return func(o *options) { o.tokenFor = newSource }
}

// WithLogger sets the logger for lifecycle events, warnings and the
// stats_log_interval lines. Without it the client logs through
// slog.Default(); pass slog.New(slog.DiscardHandler) for silence. Tokens are
// never logged.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithTLSConfig sets the TLS configuration used for https targets, for
// example to trust a private CA or present a client certificate. It is
// cloned; MinVersion is raised to TLS 1.2 if lower.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(o *options) { o.tls = cfg }
}

// WithIdempotencyKeys makes the JSON calls (PostJSON, DoJSON) send a fresh
// Idempotency-Key header with each call of a method that is not idempotent,
// the same on every attempt of that call. Such calls are then retried like
// idempotent requests, which is safe against servers that deduplicate by
// that header.
func WithIdempotencyKeys() Option {
	return func(o *options) { o.idemKeys = true }
}

// WithHooks installs pool event hooks; see Hooks for their concurrency.
// Hooks compose like httptrace.WithClientTrace: each WithHooks adds its
// hooks to those installed before, and every installed hook is called, in
// the order they were given.
func WithHooks(h Hooks) Option {
	return func(o *options) { o.hooks = o.hooks.compose(h) }
}

// WithTransportMiddleware wraps the pool's transport: mw receives the
// http.RoundTripper that sends one attempt over the pool and returns the one
// to use instead, such as otelhttp.NewTransport (a span per attempt, with the
// attempt's Authorization and default headers already set, so a trace
// header it adds goes out on every attempt) or a function that sets headers.
// Retries, the token, request_timeout and pool_timeout stay outside it: a
// call retried twice passes through mw three times. Middleware given in
// several options nest in order: the first given is the innermost.
func WithTransportMiddleware(mw func(http.RoundTripper) http.RoundTripper) Option {
	return func(o *options) {
		if mw != nil {
			o.middleware = append(o.middleware, mw)
		}
	}
}

// defaultUserAgent is sent on requests that set no User-Agent, unless
// Config.Headers names one.
const defaultUserAgent = "warmpool/" + Version

// defaultHeader is the header every request gets unless it sets its own:
// the User-Agent and Config.Headers.
func defaultHeader(cfg Config) http.Header {
	h := http.Header{"User-Agent": {defaultUserAgent}}
	for k, v := range cfg.Headers {
		h[http.CanonicalHeaderKey(k)] = []string{v}
	}
	return h
}
