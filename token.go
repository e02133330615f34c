package warmpool

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Token is a bearer credential and the time it stops being valid. A zero
// Expiry means the token does not expire. Token formats itself as redacted
// under every fmt verb and in slog, so it can be logged by accident safely.
type Token struct {
	Value  string
	Expiry time.Time
}

// String returns a redacted description; the value is never printed.
func (t Token) String() string {
	if t.Expiry.IsZero() {
		return "Token(redacted)"
	}
	return "Token(redacted, expires " + t.Expiry.UTC().Format(time.RFC3339) + ")"
}

// GoString redacts the token under %#v.
func (t Token) GoString() string { return t.String() }

// LogValue redacts the token in slog output.
func (t Token) LogValue() slog.Value { return slog.StringValue(t.String()) }

// Format redacts the token under every verb, including %+v and %q.
func (t Token) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(t.String())) }

// MarshalJSON redacts the token in JSON too, where slog's JSON handler puts a
// Token nested in a logged struct. To persist a token, store Value itself.
func (t Token) MarshalJSON() ([]byte, error) { return json.Marshal(t.String()) }

// valid reports whether the token can still be sent at now.
func (t Token) valid(now time.Time) bool {
	return t.Value != "" && (t.Expiry.IsZero() || now.Before(t.Expiry))
}

// TokenSource supplies bearer tokens. Implementations must be safe for
// concurrent use; warmpool wraps sources that fetch over the network in
// CachedTokenSource so they are called once per token lifetime. Errors must
// not contain the token: they reach logs.
type TokenSource interface {
	Token(ctx context.Context) (Token, error)
}

// TokenSourceFunc adapts a function to TokenSource.
type TokenSourceFunc func(ctx context.Context) (Token, error)

// Token calls f.
func (f TokenSourceFunc) Token(ctx context.Context) (Token, error) { return f(ctx) }

// StaticToken returns a source that always yields s, with no expiry.
func StaticToken(s string) TokenSource { return staticToken{Token{Value: s}} }

type staticToken struct{ tok Token }

func (s staticToken) Token(context.Context) (Token, error) {
	if s.tok.Value == "" {
		return Token{}, errors.New("warmpool: static token is empty")
	}
	return s.tok, nil
}

// tokenFetchTimeout bounds one fetch made on behalf of all waiting callers.
// No caller waits that long: each waits only as long as its own context
// allows (a request's request_timeout); the bound only ends a fetch that
// hangs, so that the next caller can start a new one.
const tokenFetchTimeout = 30 * time.Second

// After a failed fetch, callers get the same error at once for a hold-off
// that starts at failHoldOff and doubles with each failure in a row up to
// maxFailHoldOff, so a token issuer that is down sees a few fetches a
// second, not one per call.
const (
	failHoldOff    = 250 * time.Millisecond
	maxFailHoldOff = 4 * time.Second
)

// TokenCache is a TokenSource that calls its underlying source once per token
// lifetime. Create it with CachedTokenSource.
//
// It serves the cached token until Expiry-refreshBefore. From then until
// Expiry it still serves the cached token at once while one background fetch
// refreshes it; if that fetch fails, the old token keeps being served until it
// expires. Callers that find no valid token share a single fetch, each waiting
// only as long as its own context allows.
type TokenCache struct {
	src           TokenSource
	refreshBefore time.Duration
	recheck       time.Duration // > 0: ask src again this often (see rechecker)
	now           func() time.Time

	// fresh holds the token while it needs no refresh, so that the common
	// call is one atomic load rather than a lock all callers contend for.
	fresh atomic.Pointer[freshToken]

	mu        sync.Mutex
	tok       Token
	inflight  *tokenFetch // non-nil while a fetch runs
	fetches   int64
	failures  int64
	fetchedAt time.Time // last successful fetch
	failedAt  time.Time // last failed fetch; refresh-ahead waits a second after it
	failRun   int       // failures in a row
	lastErr   error     // the last fetch's error, served until holdUntil
	holdUntil time.Time
	name      string // the source, by type, for errors
}

// rechecker is implemented by sources that are cheap to ask and whose token
// can change before it expires, such as a file rotated in place (FileToken).
// A cache asks such a source again, in the background, every
// recheckInterval, serving the cached token meanwhile. Reporting an early
// Expiry instead would make the cache fail once it passed although the token
// was still good, and refresh on every call once it came within
// refreshBefore.
type rechecker interface {
	recheckInterval() time.Duration
}

// freshToken is a cached token and the time until which it can be served
// without a look at the cache's state; zero means for ever.
type freshToken struct {
	tok   Token
	until time.Time
}

type tokenFetch struct {
	done chan struct{}
	tok  Token
	err  error
}

// CachedTokenSource wraps src so that it is called once per token lifetime,
// refreshed refreshBefore ahead of expiry (a negative value counts as zero).
// FileToken sources are also asked again every minute, to notice a rotated
// file. A panic in src is recovered and reported as a fetch error, without
// the panic value, which may hold the token.
func CachedTokenSource(src TokenSource, refreshBefore time.Duration) *TokenCache {
	if refreshBefore < 0 {
		refreshBefore = 0
	}
	if c, ok := src.(*TokenCache); ok && c.refreshBefore == refreshBefore {
		return c
	}
	c := &TokenCache{src: src, refreshBefore: refreshBefore, now: time.Now, name: sourceName(src)}
	if r, ok := src.(rechecker); ok {
		c.recheck = r.recheckInterval()
	}
	return c
}

// Token returns a valid token, fetching one if the cache holds none. It
// waits for a fetch only as long as ctx allows. Its errors are *TokenError,
// naming the source and never holding the token.
func (c *TokenCache) Token(ctx context.Context) (Token, error) {
	if f := c.fresh.Load(); f != nil && (f.until.IsZero() || c.now().Before(f.until)) {
		return f.tok, nil
	}
	c.mu.Lock()
	now := c.now()
	tok := c.tok
	if tok.valid(now) {
		if c.refreshDueLocked(now) && now.Sub(c.failedAt) >= time.Second {
			c.startFetchLocked(ctx) // refresh ahead; keep serving the old one
		}
		c.mu.Unlock()
		return tok, nil
	}
	if c.lastErr != nil && now.Before(c.holdUntil) && c.inflight == nil {
		// The source failed a moment ago: share that answer rather than
		// ask again at once.
		err := c.lastErr
		c.mu.Unlock()
		return Token{}, err
	}
	f := c.startFetchLocked(ctx)
	c.mu.Unlock()

	select {
	case <-f.done:
		if f.err != nil {
			return Token{}, f.err
		}
		return f.tok, nil
	case <-ctx.Done():
		return Token{}, &TokenError{Source: c.name, Err: fmt.Errorf("no token before the call's deadline: %w", context.Cause(ctx))}
	}
}

// sourceName names a token source in errors: by its kind and what it reads,
// never by anything that could hold the token.
func sourceName(src TokenSource) string {
	switch s := src.(type) {
	case *fileToken:
		return "file " + s.path
	case *CommandSource:
		if len(s.Argv) > 0 {
			return "command " + s.Argv[0]
		}
	case staticToken:
		return "static token"
	case *TokenCache:
		return s.name
	}
	return fmt.Sprintf("%T", src)
}

// refreshDueLocked reports whether the valid cached token should be
// refreshed in the background: it is within refreshBefore of its expiry, or
// a rechecking source is due to be asked again. c.mu is held.
func (c *TokenCache) refreshDueLocked(now time.Time) bool {
	if exp := c.tok.Expiry; !exp.IsZero() && !now.Before(exp.Add(-c.refreshBefore)) {
		return true
	}
	return c.recheck > 0 && now.Sub(c.fetchedAt) >= c.recheck
}

// storeFreshLocked publishes c.tok for the lock-free path until its refresh
// falls due. c.mu is held.
func (c *TokenCache) storeFreshLocked() {
	f := &freshToken{tok: c.tok}
	if exp := c.tok.Expiry; !exp.IsZero() {
		f.until = exp.Add(-c.refreshBefore)
	}
	if c.recheck > 0 {
		if r := c.fetchedAt.Add(c.recheck); f.until.IsZero() || r.Before(f.until) {
			f.until = r
		}
	}
	c.fresh.Store(f)
}

// Invalidate drops the cached token so that the next call fetches a new one,
// for example after the server answered 401 to it. A fetch already running is
// left to finish.
func (c *TokenCache) Invalidate() {
	c.mu.Lock()
	c.tok = Token{}
	c.lastErr = nil
	c.fresh.Store(nil)
	c.mu.Unlock()
}

// FetchStats reports how many fetches the cache made and how many failed.
func (c *TokenCache) FetchStats() (fetches, failures int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fetches, c.failures
}

// startFetchLocked returns the running fetch or starts one. c.mu is held.
// The fetch runs detached from ctx (it serves every waiter) but keeps its
// values, and is bounded by tokenFetchTimeout.
func (c *TokenCache) startFetchLocked(ctx context.Context) *tokenFetch {
	if c.inflight != nil {
		return c.inflight
	}
	f := &tokenFetch{done: make(chan struct{})}
	c.inflight = f
	c.fetches++
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tokenFetchTimeout)
	go func() {
		defer cancel()
		tok, err := c.fetch(fctx)
		if err == nil && tok.Value == "" {
			err = errors.New("token source returned an empty token")
		}
		c.mu.Lock()
		if err != nil {
			c.failures++
			c.failRun++
			c.failedAt = c.now()
			f.err = &TokenError{Source: c.name, Err: err}
			c.lastErr = f.err
			c.holdUntil = c.failedAt.Add(min(failHoldOff<<min(c.failRun-1, 8), maxFailHoldOff))
		} else {
			c.tok = tok
			c.fetchedAt = c.now()
			c.failRun, c.lastErr = 0, nil
			c.storeFreshLocked()
			f.tok = tok
		}
		c.inflight = nil
		c.mu.Unlock()
		close(f.done)
	}()
	return f
}

// fetch calls the source, turning a panic into an error: the fetch runs on a
// goroutine of the cache, where no caller could recover it.
func (c *TokenCache) fetch(ctx context.Context) (tok Token, err error) {
	defer func() {
		if p := recover(); p != nil {
			tok, err = Token{}, fmt.Errorf("token source panicked (%T, value not shown: it may hold the token)", p)
		}
	}()
	return c.src.Token(ctx)
}

// JWTExpiry returns the expiry of a JSON Web Token: its exp claim. It does
// not verify the signature; it is for a source that got the token from a
// trusted issuer and needs to know when to fetch the next one. It fails if
// token is not a signed JWT with a positive exp claim. Errors never contain
// the token.
func JWTExpiry(token string) (time.Time, error) {
	_, rest, ok1 := strings.Cut(token, ".")
	payload, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(sig, ".") {
		return time.Time{}, errors.New("warmpool: not a JWT: want three dot-separated parts")
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(payload, "="))
	if err != nil {
		return time.Time{}, errors.New("warmpool: JWT payload is not base64url")
	}
	var claims struct {
		Exp *json.Number `json:"exp"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil {
		// The error is not wrapped: it may quote the payload.
		return time.Time{}, errors.New("warmpool: JWT payload is not a JSON object with a numeric exp")
	}
	if claims.Exp == nil {
		return time.Time{}, errors.New("warmpool: JWT has no exp claim")
	}
	exp, err := claims.Exp.Float64()
	if err != nil || !(exp > 0 && exp < float64(math.MaxInt64/int64(time.Second))) {
		return time.Time{}, errors.New("warmpool: JWT exp claim is not a positive time")
	}
	sec, frac := math.Modf(exp)
	return time.Unix(int64(sec), int64(frac*float64(time.Second))), nil
}
