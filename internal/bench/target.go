package bench

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"time"

	"github.com/warmpool/warmpool/internal/refserver"
)

// target is where the runs of one protocol send their requests, and how the
// server's connection counts are read.
type target struct {
	proto    string
	url      string       // the request URL; through the proxy when there is one
	host     string       // Host header when proxied to an external server, else ""
	tls      *tls.Config  // client TLS settings; nil for cleartext
	token    string       // bearer token, "" for none
	issuer   *tokenIssuer // hands out token; nil unless a token mode is set
	audience string       // what clients ask the issuer a token for: the server's origin
	desc     string       // what the server is, for the report
	upstream string       // host:port of the server itself
	stats    serverStats
	close    func()
}

// serverStats reads the server's connection counters.
type serverStats interface {
	// snapshot returns the counters now; ok is false if they are unknown.
	snapshot(ctx context.Context) (snap serverSnapshot, ok bool)
	// resetPeak starts a new peak; false if the server cannot.
	resetPeak() bool
}

type serverSnapshot struct {
	accepted, open, peakOpen int64
}

// startTarget starts the in-process server for proto, or describes the
// external one.
func startTarget(s Settings, proto string) (*target, error) {
	if s.Target != "" {
		return externalTarget(s, proto)
	}
	token := s.Token
	switch {
	case s.TokenMode != TokenNone:
		now := time.Now()
		token = mintJWT(now, now.Add(tokenLifetime))
	case token == "":
		token = randomToken()
	}
	srvProto := proto // refserver names them as we do
	srv, err := refserver.New(refserver.Options{Proto: srvProto, Token: token, Delay: s.ServerDelay,
		IdleTimeout: s.ServerIdleTimeout, MaxRequestsPerConn: s.ServerMaxRequests})
	if err != nil {
		return nil, err
	}
	var iss *tokenIssuer
	audience := srv.URL()
	if s.TokenMode != TokenNone {
		// The issuer hands out the token the server requires: see
		// tokenIssuer.
		if iss, err = startIssuer(token, audience, s.TokenFetch); err != nil {
			srv.Close()
			return nil, err
		}
	}
	desc := map[string]string{
		ProtoHTTP: "in-process reference server, cleartext HTTP/1.1",
		ProtoTLS:  "in-process reference server, TLS offering h2 and http/1.1 by ALPN",
		ProtoH2C:  "in-process reference server, cleartext HTTP/1.1 and h2c by prior knowledge",
	}[proto]
	return &target{
		proto:    proto,
		url:      srv.URL() + "/answer",
		tls:      srv.ClientTLSConfig(),
		token:    token,
		issuer:   iss,
		audience: audience,
		desc:     desc,
		upstream: srv.Addr(),
		stats:    localStats{srv},
		close: func() {
			if iss != nil {
				iss.close()
			}
			srv.Close()
		},
	}, nil
}

func randomToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return "bench-" + hex.EncodeToString(b)
}

// localStats reads an in-process refserver.
type localStats struct{ srv *refserver.Server }

func (l localStats) snapshot(context.Context) (serverSnapshot, bool) {
	st := l.srv.Stats()
	return serverSnapshot{accepted: st.Accepted, open: st.Open, peakOpen: st.PeakOpen}, true
}

func (l localStats) resetPeak() bool { l.srv.ResetPeak(); return true }

func externalTarget(s Settings, proto string) (*target, error) {
	u, err := url.Parse(s.Target)
	if err != nil {
		return nil, err
	}
	var tlsCfg *tls.Config
	if u.Scheme == "https" {
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: s.Insecure}
	}
	upstream := u.Host
	if u.Port() == "" {
		upstream = net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
	}
	origin := u.Scheme + "://" + u.Host
	st := newRemoteStats(origin+"/stats", tlsCfg)
	return &target{
		proto:    proto,
		url:      s.Target,
		tls:      tlsCfg,
		token:    s.Token,
		desc:     "external server " + origin,
		upstream: upstream,
		stats:    st,
		close:    st.close,
	}, nil
}

// remoteStats reads GET <origin>/stats from an external server, on one
// keep-alive connection of its own. If the fetch had to open a new
// connection, the server counted it in "accepted": snapshot leaves it out.
type remoteStats struct {
	url    string
	hc     *http.Client
	extra  int64 // connections opened by our own fetches so far
	broken bool  // the first fetch failed: the counts are unknown
	tried  bool
}

func newRemoteStats(statsURL string, tlsCfg *tls.Config) *remoteStats {
	tr := &http.Transport{MaxIdleConnsPerHost: 1, IdleConnTimeout: time.Minute}
	if tlsCfg != nil {
		tr.TLSClientConfig = tlsCfg.Clone()
	}
	return &remoteStats{url: statsURL, hc: &http.Client{Transport: tr, Timeout: 2 * time.Second}}
}

func (r *remoteStats) snapshot(ctx context.Context) (serverSnapshot, bool) {
	if r.broken {
		return serverSnapshot{}, false
	}
	snap, err := r.fetch(ctx)
	if err != nil && !r.tried {
		r.broken = true // not a refserver-like /stats: report unknown throughout
	}
	r.tried = true
	return snap, err == nil
}

func (r *remoteStats) fetch(ctx context.Context) (serverSnapshot, error) {
	newConn := false
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { newConn = !info.Reused },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return serverSnapshot{}, err
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return serverSnapshot{}, err
	}
	defer resp.Body.Close()
	if newConn {
		r.extra++
	}
	var body struct {
		Accepted *int64 `json:"accepted"`
		Open     *int64 `json:"open"`
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body)
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK || err != nil || body.Accepted == nil || body.Open == nil {
		return serverSnapshot{}, fmt.Errorf("GET %s: status %d, not a JSON object with accepted and open", r.url, resp.StatusCode)
	}
	// Our own connection is open (and was accepted) whenever we fetch.
	return serverSnapshot{accepted: *body.Accepted - r.extra, open: *body.Open - 1}, nil
}

// resetPeak is not possible from outside: the external server's peak covers
// more than one run, so it is reported as unknown.
func (r *remoteStats) resetPeak() bool { return false }

func (r *remoteStats) close() { r.hc.CloseIdleConnections() }
