// Package gcp supplies Google-signed ID tokens for warmpool clients, from the
// metadata server that Compute Engine, GKE (with Workload Identity), Cloud
// Run and Cloud Functions give every workload. Send them to Cloud Run,
// Cloud Functions and IAP-protected services, which check that a token
// names them as its audience.
//
// For one backend, whose URL is the audience:
//
//	client, err := warmpool.New(cfg, warmpool.WithTokenSource(
//		gcp.IDTokenSource("https://backend-xyz.a.run.app")))
//
// For several, a token per target origin, the origin being the audience:
//
//	client, err := warmpool.New(cfg, warmpool.WithTokenSourceFor(
//		func(aud string) warmpool.TokenSource { return gcp.IDTokenSource(aud) }))
//
// Importing the package also registers auth.type gcp for config files (see
// warmpool.AuthConfig); a program that only reads the type from its config
// imports it for that effect:
//
//	import _ "github.com/warmpool/warmpool/gcp"
//
// The client caches each token and refreshes it five minutes (auth
// refresh_before) before it expires, so the metadata server is asked about
// once an hour per audience. Outside Google Cloud, set GCE_METADATA_HOST
// ("host:port") to a server that emulates it. This is the only warmpool
// package that imports cloud.google.com/go.
package gcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"cloud.google.com/go/compute/metadata"
	"github.com/warmpool/warmpool"
)

func init() { warmpool.RegisterTokenSourceType("gcp", fromConfig) }

// fromConfig builds the source for auth.type gcp.
func fromConfig(a warmpool.AuthConfig) (warmpool.TokenSource, error) {
	if a.Audience == "" {
		return nil, fmt.Errorf("%w: ID tokens name the service they are for", warmpool.ErrAudienceRequired)
	}
	var opts []Option
	if a.Timeout > 0 {
		opts = append(opts, WithTimeout(a.Timeout))
	}
	return IDTokenSource(a.Audience, opts...), nil
}

// defaultTimeout bounds one fetch, the metadata client's own retries
// included: long enough for a slow metadata server, short enough that a
// program off Google Cloud learns so quickly.
const defaultTimeout = 10 * time.Second

// Option configures IDTokenSource.
type Option func(*options)

type options struct {
	timeout time.Duration
	hc      *http.Client
}

// WithTimeout bounds one fetch from the metadata server, retries included.
// The default is ten seconds.
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithHTTPClient sets the client that talks to the metadata server. The
// default is a small pool of its own that never goes through a proxy.
func WithHTTPClient(hc *http.Client) Option { return func(o *options) { o.hc = hc } }

// defaultHTTPClient talks to the metadata server for every source that sets
// no client of its own. The metadata server is link-local: never ask it
// through a proxy, which would see the tokens.
var defaultHTTPClient = &http.Client{Transport: &http.Transport{
	DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
	MaxIdleConnsPerHost: 2,
	IdleConnTimeout:     time.Minute,
}}

// IDTokenSource returns a source of ID tokens for audience, fetched from
// the metadata server for the workload's default service account:
// GET /computeMetadata/v1/instance/service-accounts/default/identity
// ?audience=AUDIENCE&format=full with Metadata-Flavor: Google. A token's
// Expiry is its exp claim, about an hour after it was issued.
//
// The source fetches on every call: warmpool caches it (WithTokenSource and
// WithTokenSourceFor wrap it in warmpool.CachedTokenSource). Errors name the
// metadata server and the audience, never the token.
func IDTokenSource(audience string, opts ...Option) warmpool.TokenSource {
	o := options{timeout: defaultTimeout, hc: defaultHTTPClient}
	for _, opt := range opts {
		opt(&o)
	}
	// No logger: the metadata client's debug log prints response bodies,
	// that is, the tokens.
	return &idTokenSource{audience: audience, timeout: o.timeout, md: metadata.NewClient(o.hc)}
}

type idTokenSource struct {
	audience string
	timeout  time.Duration
	md       *metadata.Client
}

func (s *idTokenSource) Token(ctx context.Context) (warmpool.Token, error) {
	if s.audience == "" {
		return warmpool.Token{}, errors.New("warmpool/gcp: ID token audience is empty")
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(parent, s.timeout)
	defer cancel()
	suffix := "instance/service-accounts/default/identity?audience=" + url.QueryEscape(s.audience) + "&format=full"
	raw, err := s.md.GetWithContext(ctx, suffix)
	if err != nil {
		return warmpool.Token{}, s.explain(parent, ctx, err)
	}
	v := strings.TrimSpace(raw)
	exp, err := warmpool.JWTExpiry(v)
	if err != nil {
		return warmpool.Token{}, fmt.Errorf("warmpool/gcp: ID token for audience %s from the metadata server at %s: %w", s.audience, metadataHost(), err)
	}
	return warmpool.Token{Value: v, Expiry: exp}, nil
}

// maxMessage caps the metadata server's error message quoted in errors.
const maxMessage = 200

// explain turns a metadata client error into one that says what to check.
func (s *idTokenSource) explain(parent, ctx context.Context, err error) error {
	at := fmt.Sprintf("for audience %s from the metadata server at %s", s.audience, metadataHost())
	var notDefined metadata.NotDefinedError
	var merr *metadata.Error
	switch {
	case parent.Err() != nil:
		return fmt.Errorf("warmpool/gcp: ID token %s: %w", at, context.Cause(parent))
	case ctx.Err() != nil:
		return fmt.Errorf("warmpool/gcp: no ID token %s within %s (not on Google Cloud? GCE_METADATA_HOST names another server): %w",
			at, s.timeout, ctx.Err())
	case errors.As(err, &notDefined):
		return fmt.Errorf("warmpool/gcp: no ID token %s: not found (does the workload have a service account?)", at)
	case errors.As(err, &merr):
		msg := strings.TrimSpace(merr.Message)
		if len(msg) > maxMessage {
			msg = msg[:maxMessage] + "…"
		}
		return fmt.Errorf("warmpool/gcp: no ID token %s: status %d %q", at, merr.Code, msg)
	}
	return fmt.Errorf("warmpool/gcp: no ID token %s: %w", at, err)
}

// metadataHost is where the metadata client sends requests, as it decides.
func metadataHost() string {
	if h := os.Getenv("GCE_METADATA_HOST"); h != "" {
		return h
	}
	return "169.254.169.254"
}
