package warmpool

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warmpool/warmpool/internal/loopback"
)

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

// authHeader returns the Authorization header value for a request to u,
// fetching the token within ctx, which carries the attempt's
// request_timeout.
func (c *Client) authHeader(ctx context.Context, u *url.URL) ([]string, error) {
	if u.Scheme == "http" && !c.cfg.AllowInsecureToken && !loopback.Host(u.Hostname()) {
		return nil, fmt.Errorf("%w to %s; use https or set allow_insecure_token: true", ErrInsecureToken, u.Host)
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
	return a.header, nil
}

// ErrInsecureToken is returned, wrapped, for a request that would send the
// client's token over plain http to a host that is not loopback, where
// anyone on the path could read it, unless allow_insecure_token is set. It
// is a setting, not a fault: retrying cannot help.
var ErrInsecureToken = errors.New("warmpool: refusing to send a bearer token over plain http")

// defaultRefreshBefore is how long before expiry a cached token is
// refreshed: Google's libraries refresh ID tokens about as early.
const defaultRefreshBefore = 5 * time.Minute

// redactedMark replaces a secret wherever warmpool prints or logs a value
// that holds one.
const redactedMark = "[redacted]"

// redirectKeepsAuth reports whether req may carry an Authorization header:
// an original request always may; a request net/http made to follow a
// redirect (req.Response != nil) only while every hop so far stayed on the
// origin (scheme, host and port) of the original request. net/http's own
// rule compares host names only, so it forwards a caller's Authorization to
// another port of the same host, to a subdomain, and from https to http.
func redirectKeepsAuth(req *http.Request) bool {
	for r := req; r.Response != nil && r.Response.Request != nil; {
		r = r.Response.Request
		if !sameOrigin(r.URL, req.URL) {
			return false
		}
	}
	return true
}

// sameOrigin reports whether a and b have the same scheme, host and port,
// an omitted port counting as the scheme's default.
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) &&
		portOrDefault(a) == portOrDefault(b)
}

func portOrDefault(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if strings.EqualFold(u.Scheme, "https") {
		return "443"
	}
	return "80"
}

// attemptHeader decides the header an attempt of req is sent with; it is
// the one place that decides Authorization. It returns req.Header itself
// when nothing changes, or a copy (req is never modified) that has:
//   - the client's token (injected), when req has no Authorization and is an
//     original request or a redirect that stayed on the original origin;
//   - no Authorization at all, on a redirect that left the original origin
//     (scheme, host and port), whoever set it;
//   - the default headers (User-Agent, Config.Headers) that req lacks.
//
// The token is fetched within ctx, which carries request_timeout.
func (c *Client) attemptHeader(ctx context.Context, req *http.Request) (h http.Header, injected bool, err error) {
	var auth []string
	_, hasAuth := req.Header["Authorization"]
	dropAuth := hasAuth && !redirectKeepsAuth(req)
	if c.tokens != nil && !hasAuth && redirectKeepsAuth(req) {
		if auth, err = c.authHeader(ctx, req.URL); err != nil {
			return nil, false, err
		}
	}
	missing := 0
	for k := range c.header {
		if _, ok := req.Header[k]; !ok {
			missing++
		}
	}
	if auth == nil && !dropAuth && missing == 0 {
		return req.Header, false, nil
	}
	h = make(http.Header, len(req.Header)+missing+1)
	for k, vv := range req.Header {
		h[k] = vv // value slices are shared: net/http only reads them
	}
	for k, vv := range c.header {
		if _, ok := h[k]; !ok {
			h[k] = vv
		}
	}
	if dropAuth {
		delete(h, "Authorization")
	}
	if auth != nil {
		h["Authorization"] = auth
	}
	return h, auth != nil, nil
}

// authBlockKey is the YAML key of the auth block, a sibling of http_client.
const authBlockKey = "auth"

// defaultAuthTimeout bounds one fetch by a command or gcp source.
const defaultAuthTimeout = 10 * time.Second

// AuthConfig selects and configures the bearer token source: the auth block
// of a config file, next to http_client, and the WARMPOOL_AUTH_<KEY>
// variables (WARMPOOL_AUTH_TYPE, WARMPOOL_AUTH_AUDIENCE, ...).
//
//	auth:
//	  type: file                 # gcp, file, env, command or static
//	  path: /var/run/secrets/tokens/backend
//	  refresh_before: 5m
//
// Build the source with TokenSource, or the client option with Option.
// AuthConfig formats and logs itself with Token redacted, under every fmt
// verb, in slog and in JSON.
type AuthConfig struct {
	// Type is the kind of source: "file" (FileToken), "env" (EnvToken),
	// "command" (CommandToken), "static" (StaticToken), "gcp" (Google ID
	// tokens from the metadata server, once a program imports
	// github.com/warmpool/warmpool/gcp), or a name given to
	// RegisterTokenSourceType. Key auth.type. Zero means no token.
	Type string
	// Audience is the audience a gcp (or registered) source asks tokens for,
	// usually the target's origin, such as "https://backend-xyz.a.run.app".
	// Key auth.audience. Zero, with type gcp, means a token per target
	// origin, with the origin as its audience (see Option).
	Audience string
	// Path is the token file of type file. Key auth.path.
	Path string
	// Env is the name of the environment variable holding the token, for
	// type env. Key auth.env.
	Env string
	// Command is the program and its arguments for type command, such as
	// [gcloud auth print-identity-token]. Key auth.command: a YAML list, or
	// a string split on spaces.
	Command []string
	// Token is the token of type static. Key auth.token. Discouraged: a
	// token in a config file ends up in version control, backups and
	// support tickets; prefer type env or file. It is never printed.
	Token string
	// RefreshBefore is how long before its expiry a token is refreshed, in
	// the background, while the old one is still sent. Key
	// auth.refresh_before. Zero means the default, 5m.
	RefreshBefore time.Duration
	// Timeout bounds one fetch of a command or gcp source. Key
	// auth.timeout. Zero means the default, 10s.
	Timeout time.Duration
}

// Option returns the client option for the config: WithTokenSource over a
// CachedTokenSource refreshed RefreshBefore ahead of expiry, or, for a gcp
// (or registered) type without an Audience, WithTokenSourceFor with a cached
// source per target origin, the origin being the audience. With an empty
// Type it returns an option that does nothing.
func (a AuthConfig) Option() (Option, error) {
	refresh := cmp.Or(a.RefreshBefore, defaultRefreshBefore)
	src, err := a.TokenSource()
	switch {
	case errors.Is(err, ErrAudienceRequired):
		f := registeredSourceType(a.Type)
		return WithTokenSourceFor(func(audience string) TokenSource {
			b := a
			b.Audience = audience
			src, err := f(b)
			if err != nil {
				err = fmt.Errorf("warmpool: auth.type %s for audience %s: %w", a.Type, audience, err)
				return TokenSourceFunc(func(context.Context) (Token, error) { return Token{}, err })
			}
			return CachedTokenSource(src, refresh)
		}), nil
	case err != nil:
		return nil, err
	case src == nil:
		return func(*options) {}, nil
	}
	return WithTokenSource(CachedTokenSource(src, refresh)), nil
}

// validate reports a type that is not known, or a key the type needs but
// lacks or does not use. Registration is checked later, by TokenSource, so
// that a config naming a type of this module's packages (moduleSourceTypes)
// still loads in a program that does not import it.
func (a AuthConfig) validate() error {
	key := func(k string) string { return authBlockKey + "." + k }
	required, builtin := builtinSourceTypes[a.Type]
	_, ofModule := moduleSourceTypes[a.Type]
	if !builtin && !ofModule && a.Type != "" && registeredSourceType(a.Type) == nil {
		return &ConfigError{Key: key("type"), Value: a.Type, Allowed: "must be one of " + sourceTypeNames()}
	}
	for _, f := range []struct {
		key, usedBy string // usedBy: the type that takes the key; "" for the module's and registered types
		set         bool
	}{
		{"audience", "", a.Audience != ""},
		{"path", "file", a.Path != ""},
		{"env", "env", a.Env != ""},
		{"command", "command", len(a.Command) > 0},
		{"token", "static", a.Token != ""},
	} {
		used := f.usedBy == a.Type || f.usedBy == "" && !builtin && a.Type != ""
		switch {
		case f.set && !used && a.Type == "":
			return &ConfigError{Key: key(f.key), Allowed: "set, but auth.type is not"}
		case f.set && !used:
			return &ConfigError{Key: key(f.key), Allowed: "not used by auth.type " + a.Type}
		case !f.set && builtin && f.key == required:
			return &ConfigError{Key: key(f.key), Allowed: "required by auth.type " + a.Type}
		}
	}
	switch {
	case a.Type == "command" && a.Command[0] == "":
		return &ConfigError{Key: key("command"), Allowed: "the program name is empty"}
	case strings.ContainsAny(a.Env, "=\x00"):
		return &ConfigError{Key: key("env"), Value: a.Env, Allowed: "must be the name of an environment variable"}
	case a.RefreshBefore < 0:
		return &ConfigError{Key: key("refresh_before"), Value: a.RefreshBefore.String(), Allowed: "must be a duration ≥ 0"}
	case a.Timeout < 0:
		return &ConfigError{Key: key("timeout"), Value: a.Timeout.String(), Allowed: "must be a duration ≥ 0"}
	}
	return nil
}

// authConfigView is AuthConfig without its methods, to print it with the
// token redacted.
type authConfigView AuthConfig

func (a AuthConfig) redacted() authConfigView {
	v := authConfigView(a)
	if v.Token != "" {
		v.Token = redactedMark
	}
	return v
}

// String formats the config as %+v would, with Token redacted.
func (a AuthConfig) String() string { return fmt.Sprintf("%+v", a.redacted()) }

// GoString formats the config as %#v would, with Token redacted.
func (a AuthConfig) GoString() string {
	return "warmpool.AuthConfig" + strings.TrimPrefix(fmt.Sprintf("%#v", a.redacted()), "warmpool.authConfigView")
}

// Format redacts Token under every verb.
func (a AuthConfig) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, a.GoString())
		return
	}
	_, _ = fmt.Fprintf(f, fmt.FormatString(f, verb), a.redacted())
}

// LogValue logs the keys that are set, with Token redacted.
func (a AuthConfig) LogValue() slog.Value {
	var attrs []slog.Attr
	for _, kv := range [][2]string{
		{"type", a.Type}, {"audience", a.Audience}, {"path", a.Path}, {"env", a.Env},
		{"command", strings.Join(a.Command, " ")}, {"token", a.redacted().Token},
	} {
		if kv[1] != "" {
			attrs = append(attrs, slog.String(kv[0], kv[1]))
		}
	}
	if a.RefreshBefore != 0 {
		attrs = append(attrs, slog.Duration("refresh_before", a.RefreshBefore))
	}
	if a.Timeout != 0 {
		attrs = append(attrs, slog.Duration("timeout", a.Timeout))
	}
	return slog.GroupValue(attrs...)
}

// MarshalJSON redacts Token, for slog's JSON handler, which marshals a
// Config logged whole.
func (a AuthConfig) MarshalJSON() ([]byte, error) { return json.Marshal(a.redacted()) }
