package idtoken

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestVerify(t *testing.T) {
	iss, err := NewIssuer(NewKey())
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewIssuer(NewKey())
	good := iss.Mint("backend", time.Hour).Value
	expired := iss.Mint("backend", -time.Second).Value
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"good", good, nil},
		{"another audience", iss.Mint("elsewhere", time.Hour).Value, ErrAudience},
		{"expired", expired, ErrExpired},
		{"another issuer", other.Mint("backend", time.Hour).Value, ErrSignature},
		{"tampered", good[:len(good)-2] + "xx", ErrSignature},
		{"empty", "", ErrMalformed},
		{"not ours", "eyJhbGciOiJSUzI1NiJ9.e30.sig", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := iss.Verify(tt.token, "backend")
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify: got %v, want %v", err, tt.want)
			}
			if err != nil && tt.token != "" && strings.Contains(err.Error(), tt.token) {
				t.Errorf("the error %q shows the token", err)
			}
		})
	}
}

func TestSource(t *testing.T) {
	iss, _ := NewIssuer(NewKey())
	tok, err := iss.Source("backend", time.Minute).Token(context.Background())
	if err != nil || iss.Verify(tok.Value, "backend") != nil {
		t.Fatalf("Source: %v, %v", tok, err)
	}
	if d := time.Until(tok.Expiry); d < 50*time.Second || d > time.Minute {
		t.Errorf("expires in %v, want about a minute", d)
	}
	if _, err := NewIssuer([]byte("short")); err == nil {
		t.Error("NewIssuer accepted a short key")
	}
}
