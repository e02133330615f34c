package warmpool

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/refserver"
)

// slowRoute is a GET handler that takes d, or less if the request is
// cancelled.
func slowRoute(d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
		w.Write([]byte("slow"))
	})
}

// getURL sends a GET through c.Do and reads the whole body.
func getURL(c *Client, url string) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

func TestCloseWithCallsInFlight(t *testing.T) {
	const (
		posts = 70
		gets  = 30
		delay = 500 * time.Millisecond
	)
	newServer := func(t *testing.T) *refserver.Server {
		return startServer(t, refserver.Options{Delay: delay, Routes: map[string]http.Handler{"GET /slow": slowRoute(delay)}})
	}
	call := func(c *Client, srv *refserver.Server, i int) error {
		if i < posts {
			return post(c, srv.URL()+"/answer")
		}
		return getURL(c, srv.URL()+"/slow")
	}

	t.Run("close", func(t *testing.T) {
		srv := newServer(t)
		var retries, retriesAfterClose atomic.Int64
		var closed atomic.Bool
		c := newClient(t, srv, DefaultConfig(), WithLogger(slog.New(slog.DiscardHandler)), WithHooks(Hooks{
			Retry: func(RetryInfo) {
				retries.Add(1)
				if closed.Load() {
					retriesAfterClose.Add(1)
				}
			},
		}))
		done := make(chan []error)
		go func() { done <- load(t, posts+gets, posts+gets, func(i int) error { return call(c, srv, i) }) }()
		waitFor(t, "100 requests in flight at the server", 3*time.Second, func() bool {
			return srv.Stats().InFlight == posts+gets
		})
		before := c.Stats().Retries
		closed.Store(true)
		c.Close()
		var errs []error
		select {
		case errs = <-done:
		case <-time.After(3 * time.Second):
			t.Fatal("calls in flight did not return within 3s of Close")
		}
		ok, matched, other, first := countErrs(errs, ErrClosed)
		if matched != posts+gets {
			t.Errorf("got %d of %d errors matching ErrClosed (%d succeeded, %d other; first other: %v), want all",
				matched, posts+gets, ok, other, first)
		}
		if after := c.Stats().Retries; after != before {
			t.Errorf("Stats().Retries: got %d after Close, want %d as before it", after, before)
		}
		if n := retriesAfterClose.Load(); n != 0 {
			t.Errorf("Hooks.Retry calls after Close: got %d, want 0 (%d in all)", n, retries.Load())
		}
	})

	t.Run("shutdown", func(t *testing.T) {
		srv := newServer(t)
		c := newClient(t, srv, DefaultConfig(), WithLogger(slog.New(slog.DiscardHandler)))
		const inFlight = 20
		done := make(chan []error)
		go func() {
			done <- load(t, inFlight, inFlight, func(i int) error { return call(c, srv, i*(posts+gets)/inFlight) })
		}()
		waitFor(t, "20 requests in flight at the server", 3*time.Second, func() bool {
			return srv.Stats().InFlight == inFlight
		})
		shut := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			shut <- c.Shutdown(ctx)
		}()
		// Shutdown refuses new calls as it starts; a call admitted before
		// that is simply one more in flight.
		var newErr error
		for range 20 {
			if newErr = post(c, srv.URL()+"/answer"); errors.Is(newErr, ErrClosed) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if !errors.Is(newErr, ErrClosed) {
			t.Errorf("a new call during Shutdown got %v, want ErrClosed", newErr)
		}
		errs := <-done
		if ok, _, _, first := countErrs(errs, nil); ok != inFlight {
			t.Errorf("got %d of %d in-flight calls succeeding during Shutdown, want all; first error: %v", ok, inFlight, first)
		}
		if err := <-shut; err != nil {
			t.Errorf("Shutdown: got %v, want nil", err)
		}
		if err := post(c, srv.URL()+"/answer"); !errors.Is(err, ErrClosed) {
			t.Errorf("a call after Shutdown got %v, want ErrClosed", err)
		}
	})
}

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
					time.Sleep(5 * time.Millisecond)
				}
			})
		}
	}
}
