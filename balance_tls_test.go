package warmpool

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// nameOnlyCert returns a certificate valid for host only (no IP address),
// self-signed, and a pool that trusts it.
func nameOnlyCert(t testing.TB, host string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: host},
		DNSNames:              []string{host},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// TestBalanceTLSVerifiesTheName: the servers' certificate names the host
// name only. Balanced over their IP addresses, the client still verifies it
// against the name (SNI and Host are the name), over HTTP/1.1 and HTTP/2;
// the same servers reached by IP fail verification.
func TestBalanceTLSVerifiesTheName(t *testing.T) {
	cert, roots := nameOnlyCert(t, fleetName)
	for _, h2 := range []bool{false, true} {
		name := map[bool]string{false: "HTTP/1.1", true: "HTTP/2"}[h2]
		t.Run(name, func(t *testing.T) {
			var (
				mu    sync.Mutex
				seen  = map[string]int{} // server address → requests
				hosts = map[string]bool{}
				snis  = map[string]bool{}
			)
			handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				seen[r.Context().Value(http.LocalAddrContextKey).(net.Addr).String()]++
				hosts[r.Host] = true
				snis[r.TLS.ServerName] = true
				mu.Unlock()
			})
			var port string
			var srvs []*httptest.Server
			for i, ip := range []string{"127.0.0.1", "127.0.0.2"} {
				addr := ip + ":0"
				if i > 0 {
					addr = net.JoinHostPort(ip, port)
				}
				ln, err := net.Listen("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				_, port, _ = net.SplitHostPort(ln.Addr().String())
				srv := httptest.NewUnstartedServer(handler)
				srv.Listener.Close()
				srv.Listener = ln
				srv.EnableHTTP2 = h2
				srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
				srv.StartTLS()
				t.Cleanup(srv.Close)
				srvs = append(srvs, srv)
			}
			cfg := quietConfig()
			cfg.DisableHTTP2 = !h2
			c, err := New(cfg, WithTLSConfig(&tls.Config{RootCAs: roots}),
				WithResolver(StaticResolver(map[string][]string{fleetName: {"127.0.0.1", "127.0.0.2"}})))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			url := "https://" + net.JoinHostPort(fleetName, port) + "/"
			for range 20 {
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				if err := doAndDrain(c, req); err != nil {
					t.Fatalf("GET by name: %v", err)
				}
			}
			mu.Lock()
			if len(seen) != 2 {
				t.Errorf("requests by server %v, want both used", seen)
			}
			if len(hosts) != 1 || !hosts[net.JoinHostPort(fleetName, port)] {
				t.Errorf("Host headers %v, want only %s:%s", hosts, fleetName, port)
			}
			if len(snis) != 1 || !snis[fleetName] {
				t.Errorf("TLS server names %v, want only %s", snis, fleetName)
			}
			mu.Unlock()
			st := c.Stats()
			for _, s := range srvs {
				h := st.Hosts[s.Listener.Addr().String()]
				if want := map[bool]string{false: "HTTP/1.1", true: "HTTP/2"}[h2]; h.Protocol != want || h.TLSHandshakes == 0 {
					t.Errorf("%s: protocol %q, %d handshakes; want %s, ≥ 1", s.Listener.Addr(), h.Protocol, h.TLSHandshakes, want)
				}
			}

			// By IP, the same certificate does not verify.
			req, _ := http.NewRequest(http.MethodGet, "https://"+net.JoinHostPort("127.0.0.2", port)+"/", nil)
			if err := doAndDrain(c, req); ErrorKind(err) != "certificate" {
				t.Errorf("GET by IP: got %v (kind %q), want a certificate error", err, ErrorKind(err))
			}
		})
	}
}
