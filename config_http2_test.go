package warmpool_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/warmpool/warmpool"
)

// TestConfigLiteralKeepsHTTP2 checks, end to end, that a literal naming
// other fields negotiates HTTP/2, and that only a Config derived from
// DefaultConfig can turn it off.
func TestConfigLiteralKeepsHTTP2(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())

	http1 := warmpool.DefaultConfig()
	http1.DisableHTTP2 = true
	tests := []struct {
		name      string
		cfg       func(*warmpool.Client) warmpool.Config // from a client already made with the literal
		wantMajor int
	}{
		{"literal", func(*warmpool.Client) warmpool.Config { return warmpool.Config{MaxConnections: 50} }, 2},
		{"Client.Config of the literal", (*warmpool.Client).Config, 2},
		{"DefaultConfig with HTTP/2 off", func(*warmpool.Client) warmpool.Config { return http1 }, 1},
	}
	base, err := warmpool.New(warmpool.Config{MaxConnections: 50}, warmpool.WithTLSConfig(&tls.Config{RootCAs: pool}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { base.Close() })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := warmpool.New(tt.cfg(base), warmpool.WithTLSConfig(&tls.Config{RootCAs: pool}))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.ProtoMajor != tt.wantMajor {
				t.Errorf("got %s (server saw %s), want HTTP/%d", resp.Proto, body, tt.wantMajor)
			}
			if got := !c.Config().DisableHTTP2; got != (tt.wantMajor == 2) {
				t.Errorf("got HTTP/2 on (Config().DisableHTTP2 false) %v, want %v", got, tt.wantMajor == 2)
			}
		})
	}
}
