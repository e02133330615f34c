package refserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"sync"
	"time"
)

// certValidity is how long the generated certificate is valid. A process that
// runs longer (a long `warmpool serve`) should restart the server daily.
const certValidity = 24 * time.Hour

// testCert is the self-signed certificate shared by every TLS server in the
// process, generated on first use so that tests do not pay for a key per server.
var testCert = sync.OnceValues(generateCert)

type certBundle struct {
	cert  tls.Certificate
	roots *x509.CertPool
}

// generateCert makes an ECDSA P-256 self-signed certificate for the loopback
// names, which also serves as its own root of trust.
func generateCert() (*certBundle, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("refserver: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("refserver: generate serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"warmpool refserver"}, CommonName: "localhost"},
		NotBefore:             now.Add(-time.Hour), // tolerate small clock skew
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("refserver: create certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("refserver: parse certificate: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	return &certBundle{
		cert:  tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		roots: roots,
	}, nil
}

// serverTLSConfig is the server side: the shared certificate, TLS 1.2 or newer.
// http.Server.ServeTLS sets NextProtos from http.Server.Protocols.
func serverTLSConfig(b *certBundle) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{b.cert},
		MinVersion:   tls.VersionTLS12,
	}
}
