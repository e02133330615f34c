// Package idtoken plays, in the example system, the ID tokens the brief's
// frontend gets from its _get_id_token() (on Google Cloud, from the metadata
// server) and its backend checks: short-lived bearer tokens naming an
// audience, signed with HMAC-SHA256 under a key the two services share.
// Only the format is made up; the flow is the real one: the frontend's
// warmpool client fetches a token through a TokenSource, caches it until
// shortly before it expires, and sends it on every call; the backend
// rejects a missing, forged, expired or misaddressed token with 401.
//
// No error here contains a token or the key.
package idtoken

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/warmpool/warmpool"
)

// Errors Verify returns, matched with errors.Is.
var (
	ErrMalformed = errors.New("idtoken: not a token of this issuer")
	ErrSignature = errors.New("idtoken: bad signature")
	ErrExpired   = errors.New("idtoken: token expired")
	ErrAudience  = errors.New("idtoken: token for another audience")
)

// Issuer mints and verifies tokens under one key.
type Issuer struct {
	key []byte
	now func() time.Time
}

// NewIssuer returns an issuer with key, which must be at least 32 bytes.
func NewIssuer(key []byte) (*Issuer, error) {
	if len(key) < 32 {
		return nil, errors.New("idtoken: the key must be at least 32 bytes")
	}
	return &Issuer{key: append([]byte(nil), key...), now: time.Now}, nil
}

// NewKey returns a random key for NewIssuer.
func NewKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k) // never fails (crypto/rand)
	return k
}

// claims is a token's payload.
type claims struct {
	Audience string `json:"aud"`
	Expiry   int64  `json:"exp"` // unix seconds
	Nonce    string `json:"nonce"`
}

var b64 = base64.RawURLEncoding

// Mint returns a token for audience, valid for ttl.
func (i *Issuer) Mint(audience string, ttl time.Duration) warmpool.Token {
	exp := i.now().Add(ttl)
	payload, _ := json.Marshal(claims{Audience: audience, Expiry: exp.Unix(), Nonce: rand.Text()})
	body := "v1." + b64.EncodeToString(payload)
	return warmpool.Token{Value: body + "." + b64.EncodeToString(i.sign(body)), Expiry: exp}
}

func (i *Issuer) sign(body string) []byte {
	m := hmac.New(sha256.New, i.key)
	m.Write([]byte(body))
	return m.Sum(nil)
}

// Verify checks that token is one of this issuer's, unexpired, for
// audience.
func (i *Issuer) Verify(token, audience string) error {
	body, sig, ok := strings.Cut(strings.TrimPrefix(token, "v1."), ".")
	if !ok || !strings.HasPrefix(token, "v1.") {
		return ErrMalformed
	}
	got, err := b64.DecodeString(sig)
	if err != nil || !hmac.Equal(got, i.sign("v1."+body)) {
		return ErrSignature
	}
	payload, err := b64.DecodeString(body)
	var c claims
	if err != nil || json.Unmarshal(payload, &c) != nil {
		return ErrMalformed
	}
	if !i.now().Before(time.Unix(c.Expiry, 0)) {
		return ErrExpired
	}
	if c.Audience != audience {
		return ErrAudience
	}
	return nil
}

// Source returns a warmpool.TokenSource that mints tokens for audience,
// each valid for ttl: what the metadata server is to a Cloud Run service.
func (i *Issuer) Source(audience string, ttl time.Duration) warmpool.TokenSource {
	return warmpool.TokenSourceFunc(func(ctx context.Context) (warmpool.Token, error) {
		if err := ctx.Err(); err != nil {
			return warmpool.Token{}, err
		}
		return i.Mint(audience, ttl), nil
	})
}
