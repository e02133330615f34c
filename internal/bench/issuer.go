package bench

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// tokenLifetime is how long after it is minted the issuer's token expires:
// an hour, as Google ID tokens.
const tokenLifetime = time.Hour

// tokenIssuer is a fake token issuer on 127.0.0.1, in the manner of the GCE
// metadata server's identity endpoint: GET /token?audience=<origin> answers,
// after the configured delay, with a JWT as the plain-text body.
//
// It hands out one token, the one the reference server was started with:
// refserver compares the bearer token with a fixed value, so that is the
// only way it can keep checking every request while the tokens come from the
// issuer. A request that went out without the issued token still fails with
// 401, and shows in the report as a status error. What a real issuer does
// beyond that (minting a new JWT per fetch) costs microseconds against the
// milliseconds of the delay.
//
// It is its own server, not a route of refserver: the server's connection
// counts are the benchmark's figures, and fetches must not mix into them.
type tokenIssuer struct {
	url      string // http://127.0.0.1:port/token
	token    string
	audience string
	delay    time.Duration

	fetches  atomic.Int64 // tokens handed out
	rejected atomic.Int64 // fetches answered with an error
	conns    atomic.Int64 // connections accepted

	srv      *http.Server
	done     chan struct{} // closed by close: waiting fetches give up
	serveErr chan error
	once     sync.Once

	mu       sync.Mutex
	closing  bool           // set by close: no handler enters after it
	handlers sync.WaitGroup // handlers running; Add under mu while !closing
}

// startIssuer listens on a free loopback port and hands out token, after
// delay, to fetches that ask for audience.
func startIssuer(token, audience string, delay time.Duration) (*tokenIssuer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("token issuer: %w", err)
	}
	iss := &tokenIssuer{
		url:      "http://" + ln.Addr().String() + "/token",
		token:    token,
		audience: audience,
		delay:    delay,
		done:     make(chan struct{}),
		serveErr: make(chan error, 1),
	}
	iss.srv = &http.Server{
		Handler:           http.HandlerFunc(iss.serveToken),
		ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				iss.conns.Add(1)
			}
		},
	}
	go func() { iss.serveErr <- iss.srv.Serve(ln) }()
	return iss, nil
}

// tokenURL is the URL a client fetches a token for audience from.
func (iss *tokenIssuer) tokenURL(audience string) string {
	return iss.url + "?audience=" + url.QueryEscape(audience)
}

func (iss *tokenIssuer) serveToken(w http.ResponseWriter, r *http.Request) {
	if !iss.enter() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	defer iss.handlers.Done()
	switch {
	case r.URL.Path != "/token":
		iss.rejected.Add(1)
		http.NotFound(w, r)
		return
	case r.Method != http.MethodGet:
		iss.rejected.Add(1)
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	case r.URL.Query().Get("audience") != iss.audience:
		iss.rejected.Add(1)
		http.Error(w, "unknown audience", http.StatusBadRequest)
		return
	}
	if iss.delay > 0 {
		timer := time.NewTimer(iss.delay)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-r.Context().Done():
			return // the client gave up: nothing handed out
		case <-iss.done:
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
	}
	iss.fetches.Add(1)
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(iss.token))
}

// enter counts a handler in, unless the issuer is closing.
func (iss *tokenIssuer) enter() bool {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	if iss.closing {
		return false
	}
	iss.handlers.Add(1)
	return true
}

// fetchCount is the number of tokens handed out so far.
func (iss *tokenIssuer) fetchCount() int64 { return iss.fetches.Load() }

// close stops the issuer and waits for its handlers. It is safe to call more
// than once.
func (iss *tokenIssuer) close() {
	iss.once.Do(func() {
		iss.mu.Lock()
		iss.closing = true
		iss.mu.Unlock()
		close(iss.done)
		_ = iss.srv.Close()
		iss.handlers.Wait()
		<-iss.serveErr // http.ErrServerClosed, or a listener error the fetches saw
	})
}

// mintJWT returns a JWT-shaped token (header.payload.signature, base64url
// without padding) issued at iat that expires at exp: the shape token sources
// parse (warmpool.JWTExpiry). Its signature is random bytes; nobody verifies
// it. Its aud claim names the benchmark, not the server's origin, which is
// not known until the server that requires the token has started.
func mintJWT(iat, exp time.Time) string {
	enc := base64.RawURLEncoding
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": "warmpool-bench"})
	payload, _ := json.Marshal(map[string]any{
		"iss": "https://issuer.warmpool-bench.invalid",
		"sub": "warmpool-bench",
		"aud": "warmpool-bench",
		"iat": iat.Unix(),
		"exp": exp.Unix(),
	})
	sig := make([]byte, 256) // the size of an RS256 signature
	rand.Read(sig)
	return enc.EncodeToString(header) + "." + enc.EncodeToString(payload) + "." + enc.EncodeToString(sig)
}
