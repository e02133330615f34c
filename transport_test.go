package warmpool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/faultproxy"
	"github.com/warmpool/warmpool/internal/refserver"
)

// faultBounded checks each call failed with a deadline error within limit,
// the timeout under test plus 10 % and the scheduling allowance.
func faultBounded(t *testing.T, calls []faultCall, timeout time.Duration) {
	t.Helper()
	limit := timeout + timeout/10 + faultSchedSlack
	var durs []time.Duration
	for _, c := range calls {
		durs = append(durs, c.dur())
		if !errors.Is(c.err, context.DeadlineExceeded) {
			t.Errorf("call got %v, want a deadline error", c.err)
		}
		if c.dur() > limit {
			t.Errorf("call failed after %s, want ≤ %s (timeout %s + 10%% + %s)", c.dur(), limit, timeout, faultSchedSlack)
		}
	}
	slices.Sort(durs)
	if len(durs) > 0 {
		t.Logf("failure times: min %s, median %s, max %s for a timeout of %s",
			durs[0].Round(time.Millisecond), durs[len(durs)/2].Round(time.Millisecond), durs[len(durs)-1].Round(time.Millisecond), timeout)
	}
}

// 4. A black hole: the proxy accepts, and nothing gets through.
func faultBlackHole(t *testing.T) {
	t.Run("request_timeout", func(t *testing.T) {
		srv := startServer(t, refserver.Options{})
		p := faultProxy(t, srv.Addr())
		cfg := faultConfig()
		cfg.MaxRetries = -1 // one attempt per call: its own time is measured
		cfg.RequestTimeout = 300 * time.Millisecond
		c := newClient(t, srv, cfg)
		url := "http://" + p.Addr() + "/healthz"
		// Warm the pool first: the black hole swallows pooled and new
		// connections alike. A loaded machine may need more than one
		// round within the 300ms request_timeout.
		for round := 1; ; round++ {
			_, _, other, err := countErrs(load(t, 8, 8, func(int) error { return faultGet(context.Background(), c, url) }), nil)
			if other == 0 {
				break
			}
			if round == 5 {
				t.Fatalf("warm-up: %v", err)
			}
		}
		if err := p.AddToxic(faultproxy.Timeout("hole", faultproxy.Upstream)); err != nil {
			t.Fatal(err)
		}
		calls := faultCalls(t, 8, 8*3, 5*time.Second, nil, nil, func(int) error { return faultGet(context.Background(), c, url) })
		ft, cs := faultCount(calls), c.Stats()
		faultSummary(t, "black hole (request_timeout)", ft, srv.Stats(), cs)
		if ft.failed != 24 {
			t.Errorf("%d of %d calls failed, want all 24", ft.failed, ft.sent)
		}
		faultBounded(t, calls, cfg.RequestTimeout)
	})
	t.Run("connection_timeout", func(t *testing.T) {
		// With TLS the black hole stops the handshake, which warmpool's
		// dialer bounds by connection_timeout.
		srv := startServer(t, refserver.Options{Proto: "tls-h1"})
		p := faultProxy(t, srv.Addr())
		if err := p.AddToxic(faultproxy.Timeout("hole", faultproxy.Upstream)); err != nil {
			t.Fatal(err)
		}
		cfg := faultConfig()
		cfg.MaxRetries = -1
		cfg.ConnectionTimeout = 300 * time.Millisecond
		cfg.RequestTimeout = 5 * time.Second
		c := newClient(t, srv, cfg)
		url := "https://" + p.Addr() + "/healthz"
		calls := faultCalls(t, 8, 8*3, 5*time.Second, nil, nil, func(int) error { return faultGet(context.Background(), c, url) })
		ft, cs := faultCount(calls), c.Stats()
		faultSummary(t, "black hole (connection_timeout)", ft, srv.Stats(), cs)
		if ft.failed != 24 || cs.DialFailures.Timeout != 24 {
			t.Errorf("%d of %d calls failed, %d dial timeouts; want 24 and 24", ft.failed, ft.sent, cs.DialFailures.Timeout)
		}
		faultBounded(t, calls, cfg.ConnectionTimeout)
	})
}

// 5. The server answers slower than request_timeout: the call fails with a
// deadline error, and its connection, which may still deliver the late
// answer, is not reused.
func faultSlowServer(t *testing.T) {
	srv := startServer(t, refserver.Options{})
	p := faultProxy(t, srv.Addr())
	cfg := faultConfig()
	cfg.MaxRetries = -1
	cfg.RequestTimeout = 300 * time.Millisecond
	c := newClient(t, srv, cfg)
	url := "http://" + p.Addr() + "/healthz"
	if err := faultGet(context.Background(), c, url); err != nil {
		t.Fatal(err)
	}
	if err := p.AddToxic(faultproxy.Latency("slow", faultproxy.Downstream, time.Second)); err != nil {
		t.Fatal(err)
	}
	calls := faultCalls(t, 4, 4*3, 5*time.Second, nil, nil, func(int) error { return faultGet(context.Background(), c, url) })
	ft := faultCount(calls)
	faultBounded(t, calls, cfg.RequestTimeout)
	if ft.failed != 12 {
		t.Errorf("%d of %d calls failed, want all 12", ft.failed, ft.sent)
	}
	waitFor(t, "timed-out connections to close", 3*time.Second, func() bool { return c.Stats().Open == 0 })
	cs := c.Stats()
	// The one warm connection may serve one slow call; after a timeout no
	// connection serves again.
	if cs.Reused > 1 || cs.Created < 12 {
		t.Errorf("client created %d connections and reused %d for 12 timed-out calls, want ≥ 12 and ≤ 1 (the warm one)", cs.Created, cs.Reused)
	}
	if err := p.RemoveToxic("slow"); err != nil {
		t.Fatal(err)
	}
	if err := faultGet(context.Background(), c, url); err != nil {
		t.Errorf("after the latency is gone: %v", err)
	}
	st := srv.Stats()
	faultSummary(t, "slow server", ft, st, c.Stats())
	if st.Accepted != c.Stats().Created {
		t.Errorf("server accepted %d connections, client created %d, want equal (one upstream connection per client connection)", st.Accepted, c.Stats().Created)
	}
}

func TestOversizedBodyClosesConnection(t *testing.T) {
	srv := startServer(t, refserver.Options{})
	cfg := DefaultConfig()
	cfg.MaxResponseBytes = 2000
	c := newClient(t, srv, cfg)
	if err := post(c, srv.URL()+"/answer?size=1000"); err != nil {
		t.Fatal(err)
	}
	err := post(c, srv.URL()+"/answer?size=50000")
	if !errors.Is(err, ErrResponseTooLarge) {
		t.Fatalf("got %v, want ErrResponseTooLarge", err)
	}
	if err := post(c, srv.URL()+"/answer?size=1000"); err != nil {
		t.Fatal(err)
	}
	if n := srv.Stats().Accepted; n != 2 {
		t.Errorf("server accepted %d connections, want 2: the oversized answer's connection must be closed, not drained", n)
	}
}

func TestOversizedChunkedBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"answer":"`)
		for range 100 { // no Content-Length: the limit must hold while reading
			fmt.Fprint(w, strings.Repeat("y", 1000))
			w.(http.Flusher).Flush()
		}
		fmt.Fprint(w, `"}`)
	}))
	defer srv.Close()
	cfg := DefaultConfig()
	cfg.MaxResponseBytes = 10000
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := post(c, srv.URL); !errors.Is(err, ErrResponseTooLarge) {
		t.Fatalf("got %v, want ErrResponseTooLarge", err)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 64<<10)
	total := 0
	for {
		n, err := resp.Body.Read(buf)
		total += n
		if err != nil {
			if !errors.Is(err, ErrResponseTooLarge) {
				t.Fatalf("Do body read: got %v, want ErrResponseTooLarge", err)
			}
			break
		}
	}
	if total != 10000 {
		t.Errorf("read %d bytes before the error, want exactly max_response_bytes (10000)", total)
	}
}

func TestRequestTimeout(t *testing.T) {
	srv := startServer(t, refserver.Options{Delay: 2 * time.Second})
	cfg := DefaultConfig()
	cfg.RequestTimeout = 100 * time.Millisecond
	c := newClient(t, srv, cfg)
	start := time.Now()
	err := post(c, srv.URL()+"/answer")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "request_timeout") {
		t.Fatalf("got %v, want a request_timeout error matching context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("timed out after %s, want about 100ms", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = c.PostJSON(ctx, srv.URL()+"/answer", question, nil)
	if !errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "request_timeout") {
		t.Errorf("caller's deadline: got %v, want the caller's context.DeadlineExceeded", err)
	}
}

func TestTransportMiddleware(t *testing.T) {
	const token = "middleware-test-token"
	var (
		served  atomic.Int64
		mu      sync.Mutex
		headers []string // X-Test as the server saw it, per attempt
	)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		headers = append(headers, r.Header.Get("X-Test"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if served.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":"busy"}`)
			return
		}
		io.WriteString(w, `{"answer":"42"}`)
	}))
	defer ts.Close()

	var (
		mwCalls  atomic.Int64
		authSeen atomic.Int64
	)
	mw := func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			mwCalls.Add(1)
			if req.Header.Get("Authorization") == "Bearer "+token {
				authSeen.Add(1)
			}
			r := req.Clone(req.Context())
			r.Header.Set("X-Test", "mw")
			return next.RoundTrip(r)
		})
	}
	cfg := DefaultConfig()
	cfg.RetryBackoffFactor = 0.01
	c, err := New(cfg, WithTokenSource(StaticToken(token)), WithTransportMiddleware(mw), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	var a answer
	if err := c.PostJSON(context.Background(), ts.URL, question, &a); err != nil {
		t.Fatalf("PostJSON: got %v, want success on the third attempt", err)
	}
	if n := mwCalls.Load(); n != 3 {
		t.Errorf("middleware calls: got %d, want 3 (one per attempt)", n)
	}
	if n := authSeen.Load(); n != 3 {
		t.Errorf("attempts where the middleware saw the Authorization header: got %d, want 3", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"mw", "mw", "mw"}; !slices.Equal(headers, want) {
		t.Errorf("X-Test seen by the server per attempt: got %q, want %q", headers, want)
	}
}

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// trackedBody is a request body that records whether it was closed.
type trackedBody struct {
	io.Reader
	closed atomic.Bool
}

func (b *trackedBody) Close() error { b.closed.Store(true); return nil }

// bodyLog hands out tracked bodies and checks that all were closed.
type bodyLog struct {
	mu     sync.Mutex
	bodies []*trackedBody
}

func (l *bodyLog) body(p []byte) *trackedBody {
	b := &trackedBody{Reader: bytes.NewReader(p)}
	l.mu.Lock()
	l.bodies = append(l.bodies, b)
	l.mu.Unlock()
	return b
}

func (l *bodyLog) allClosed() (closed, total int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range l.bodies {
		if b.closed.Load() {
			closed++
		}
	}
	return closed, len(l.bodies)
}

func TestRequestBodyClosedOnEveryErrorPath(t *testing.T) {
	payload := []byte(`{"question":"q"}`)
	baseCfg := func() Config {
		cfg := DefaultConfig()
		cfg.MaxRetries = 2
		cfg.RetryBackoffFactor = 0.01
		cfg.ConnectionTimeout = time.Second
		return cfg
	}
	quiet := WithLogger(slog.New(slog.DiscardHandler))
	failing := TokenSourceFunc(func(context.Context) (Token, error) { return Token{}, errors.New("issuer down") })

	// Each case returns the client and URL to call, and checks the error.
	cases := []struct {
		name  string
		setup func(t *testing.T) (*Client, string)
		check func(err error) bool
	}{
		{"client_closed", func(t *testing.T) (*Client, string) {
			srv := startServer(t, refserver.Options{})
			c := newClient(t, srv, baseCfg(), quiet)
			c.Close()
			return c, srv.URL() + "/answer"
		}, func(err error) bool { return errors.Is(err, ErrClosed) }},
		{"pool_timeout", func(t *testing.T) (*Client, string) {
			srv := startServer(t, refserver.Options{})
			cfg := baseCfg()
			cfg.MaxConnections = 1
			cfg.MaxKeepaliveConnections = 1 // DefaultConfig filled in 20, above the new max
			cfg.PoolTimeout = 50 * time.Millisecond
			c := newClient(t, srv, cfg, quiet)
			held := make(chan error, 1)
			go func() { held <- post(c, srv.URL()+"/answer?delay=500ms") }()
			t.Cleanup(func() { <-held })
			waitFor(t, "the slow request at the server", 3*time.Second, func() bool { return srv.Stats().InFlight == 1 })
			return c, srv.URL() + "/answer"
		}, func(err error) bool { return errors.Is(err, ErrPoolTimeout) }},
		{"token_error", func(t *testing.T) (*Client, string) {
			srv := startServer(t, refserver.Options{})
			return newClient(t, srv, baseCfg(), quiet, WithTokenSource(failing)), srv.URL() + "/answer"
		}, func(err error) bool { _, ok := errors.AsType[*TokenError](err); return ok }},
		{"insecure_token", func(t *testing.T) (*Client, string) {
			c, err := New(baseCfg(), quiet, WithTokenSource(StaticToken("secret")))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c, "http://192.0.2.1/answer" // TEST-NET-1: refused before any dial
		}, func(err error) bool { return errors.Is(err, ErrInsecureToken) }},
		{"dial_refused", func(t *testing.T) (*Client, string) {
			c, err := New(baseCfg(), quiet)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c, "http://" + closedAddr(t) + "/answer"
		}, func(err error) bool { return ErrorKind(err) == "refused" }},
		{"request_timeout", func(t *testing.T) (*Client, string) {
			srv := startServer(t, refserver.Options{})
			cfg := baseCfg()
			cfg.RequestTimeout = 100 * time.Millisecond
			return newClient(t, srv, cfg, quiet), srv.URL() + "/answer?delay=2s"
		}, func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }},
	}
	for _, tc := range cases {
		for _, withGetBody := range []bool{false, true} {
			name := tc.name + "/no_getbody"
			if withGetBody {
				name = tc.name + "/getbody"
			}
			t.Run(name, func(t *testing.T) {
				c, url := tc.setup(t)
				var log bodyLog
				req, err := http.NewRequest(http.MethodPost, url, log.body(payload))
				if err != nil {
					t.Fatal(err)
				}
				req.ContentLength = int64(len(payload))
				req.Header.Set("Content-Type", "application/json")
				if withGetBody {
					req.GetBody = func() (io.ReadCloser, error) { return log.body(payload), nil }
				}
				resp, err := c.Do(req)
				if err == nil {
					resp.Body.Close()
					t.Fatalf("Do: got status %d, want an error", resp.StatusCode)
				}
				if !tc.check(err) {
					t.Errorf("Do: got %v (kind %q), want a %s error", err, ErrorKind(err), tc.name)
				}
				// net/http may close a body from another goroutine after
				// RoundTrip returns (the RoundTripper contract allows it).
				deadline := time.Now().Add(2 * time.Second)
				for {
					closed, total := log.allClosed()
					if closed == total {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("bodies closed: got %d of %d, want all (error: %v)", closed, total, err)
					}
					time.Sleep(5 * time.Millisecond) // a poll: no event tells when net/http closed it
				}
			})
		}
	}
}

// Through an HTTP proxy net/http dials the proxy's address, where no request
// is counted: the dial gate must stay out of the way.
func TestThroughForwardProxy(t *testing.T) {
	srv := startServer(t, refserver.Options{})
	var proxied atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Add(1)
		out, _ := http.NewRequestWithContext(r.Context(), r.Method, r.URL.String(), r.Body)
		out.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	defer proxy.Close()
	defer http.DefaultTransport.(*http.Transport).CloseIdleConnections()

	c := newClient(t, srv, DefaultConfig())
	pu, _ := url.Parse(proxy.URL)
	c.tr.Proxy = http.ProxyURL(pu)
	if ok, _, _, err := countErrs(load(t, 8, 8, func(int) error { return post(c, srv.URL()+"/answer") }), nil); ok != 8 {
		t.Fatalf("%d of 8 succeeded through the proxy, first error: %v", ok, err)
	}
	if n := proxied.Load(); n != 8 {
		t.Errorf("proxy forwarded %d requests, want 8", n)
	}
	if _, ok := c.Stats().Hosts[pu.Host]; !ok {
		t.Errorf("no connections counted to the proxy %s: %v", pu.Host, c.Stats().HostNames())
	}
}
