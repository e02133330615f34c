package warmpool

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/refserver"
)

func TestHTTPClientSharesPool(t *testing.T) {
	srv := startServer(t, refserver.Options{Token: "t0ken"})
	c := newClient(t, srv, DefaultConfig(), WithTokenSource(StaticToken("t0ken")))
	hc := c.HTTPClient()
	for range 5 {
		resp, err := hc.Post(srv.URL()+"/answer", "application/json", strings.NewReader(`{"question":"q"}`))
		if err != nil {
			t.Fatal(err)
		}
		drainAndClose(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("HTTPClient got status %d, want 200 (token sent?)", resp.StatusCode)
		}
		if err := post(c, srv.URL()+"/answer"); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.Stats().Accepted; n != 1 {
		t.Errorf("server accepted %d connections, want 1 shared by HTTPClient and PostJSON", n)
	}
}

func TestCloseIsIdempotentAndFinal(t *testing.T) {
	srv := startServer(t, refserver.Options{})
	c := newClient(t, srv, DefaultConfig())
	if err := post(c, srv.URL()+"/answer"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() { defer wg.Done(); c.Close() }()
	}
	wg.Wait()
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := post(c, srv.URL()+"/answer"); !errors.Is(err, ErrClosed) {
		t.Errorf("request after Close: got %v, want ErrClosed", err)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL()+"/healthz", nil)
	if _, err := c.Do(req); !errors.Is(err, ErrClosed) {
		t.Errorf("Do after Close: got %v, want ErrClosed", err)
	}
	waitFor(t, "the server to see the connection closed", 2*time.Second, func() bool { return srv.Stats().Open == 0 })
	if st := c.Stats(); st.Open != 0 || st.ClosedBy.Client != 1 {
		t.Errorf("after Close: open=%d closed by client=%d, want 0 and 1", st.Open, st.ClosedBy.Client)
	}
}

func TestShutdownLetsInFlightRequestFinish(t *testing.T) {
	srv := startServer(t, refserver.Options{Delay: 300 * time.Millisecond})
	c := newClient(t, srv, DefaultConfig())
	done := make(chan error, 1)
	go func() { done <- post(c, srv.URL()+"/answer") }()
	waitFor(t, "the request to reach the server", 2*time.Second, func() bool { return srv.Stats().InFlight == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-done; err != nil {
		t.Errorf("in-flight request: %v, want success", err)
	}
	if err := post(c, srv.URL()+"/answer"); !errors.Is(err, ErrClosed) {
		t.Errorf("request after Shutdown: got %v, want ErrClosed", err)
	}
	waitFor(t, "the server to see the connection closed", 2*time.Second, func() bool { return srv.Stats().Open == 0 })
}

func TestShutdownGivesUpWhenContextEnds(t *testing.T) {
	srv := startServer(t, refserver.Options{Delay: 2 * time.Second})
	c := newClient(t, srv, DefaultConfig())
	done := make(chan error, 1)
	go func() { done <- post(c, srv.URL()+"/answer") }()
	waitFor(t, "the request to reach the server", 2*time.Second, func() bool { return srv.Stats().InFlight == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: got %v, want context.DeadlineExceeded", err)
	}
	if err := <-done; err == nil {
		t.Error("in-flight request succeeded after a forced close, want an error")
	}
}

// failingTransport is a RoundTripper that always fails.
type failingTransport struct{}

var errFailingTransport = errors.New("failing transport")

func (failingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close()
	}
	return nil, errFailingTransport
}

func TestHTTPClientIsACopy(t *testing.T) {
	srv := startServer(t, refserver.Options{Delay: 20 * time.Millisecond})
	c := newClient(t, srv, DefaultConfig())
	url := srv.URL() + "/answer"

	h1, h2 := c.HTTPClient(), c.HTTPClient()
	if h1 == h2 {
		t.Fatal("HTTPClient() returned the same *http.Client twice, want a new one per call")
	}

	// Requests in flight through PostJSON and a third copy while h1 is
	// changed: under -race, no copy shares state with another.
	h3 := c.HTTPClient()
	inflight := make(chan []error)
	go func() {
		inflight <- load(t, 8, 8, func(i int) error {
			if i%2 == 0 {
				return post(c, url)
			}
			resp, err := h3.Post(url, "application/json", strings.NewReader(`{"question":"q"}`))
			if err != nil {
				return err
			}
			return drainStatus(resp)
		})
	}()
	h1.Transport = failingTransport{}
	h1.Timeout = time.Second

	if _, err := h1.Post(url, "application/json", strings.NewReader(`{}`)); !errors.Is(err, errFailingTransport) {
		t.Errorf("the changed copy: got %v, want the failing transport's error", err)
	}
	if err := post(c, url); err != nil {
		t.Errorf("PostJSON after a copy's Transport was changed: got %v, want nil", err)
	}
	resp, err := h2.Post(url, "application/json", strings.NewReader(`{"question":"q"}`))
	if err != nil {
		t.Errorf("another copy after one's Transport was changed: got %v, want nil", err)
	} else if err := drainStatus(resp); err != nil {
		t.Errorf("another copy: %v", err)
	}
	if h2.Transport == h1.Transport {
		t.Error("the other copy's Transport changed with the first's")
	}
	if ok, _, _, first := countErrs(<-inflight, nil); ok != 8 {
		t.Errorf("requests in flight while a copy changed: got %d of 8 succeeding, want all; first error: %v", ok, first)
	}
}

// drainStatus reads and closes resp's body and fails on a non-2xx status.
func drainStatus(resp *http.Response) error {
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 != 2 {
		return errors.New("status " + resp.Status)
	}
	return nil
}

func TestDoJSONMethods(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
			return
		case "/missing":
			http.Error(w, "no such thing", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"method": r.Method, "body": string(body)})
	}))
	defer ts.Close()
	cfg := DefaultConfig()
	cfg.MaxRetries = -1
	c, err := New(cfg, WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	type echo struct{ Method, Body string }
	in := map[string]int{"n": 1}
	for _, tc := range []struct {
		method string
		in     any
		body   string
	}{
		{http.MethodGet, nil, ""},
		{http.MethodPut, in, `{"n":1}`},
		{http.MethodPatch, in, `{"n":1}`},
		{http.MethodDelete, nil, ""},
	} {
		t.Run(tc.method, func(t *testing.T) {
			var out struct {
				Method string `json:"method"`
				Body   string `json:"body"`
			}
			if err := c.DoJSON(context.Background(), tc.method, ts.URL+"/echo", tc.in, &out); err != nil {
				t.Fatalf("DoJSON: %v", err)
			}
			if got, want := (echo{out.Method, out.Body}), (echo{tc.method, tc.body}); got != want {
				t.Errorf("server saw %+v, want %+v", got, want)
			}
		})
	}
	t.Run("204_leaves_out_untouched", func(t *testing.T) {
		out := map[string]string{"kept": "yes"}
		if err := c.DoJSON(context.Background(), http.MethodPut, ts.URL+"/nocontent", in, &out); err != nil {
			t.Fatalf("DoJSON: %v", err)
		}
		if len(out) != 1 || out["kept"] != "yes" {
			t.Errorf("out after a 204: got %v, want it untouched", out)
		}
	})
	t.Run("non_2xx_is_StatusError", func(t *testing.T) {
		err := c.DoJSON(context.Background(), http.MethodDelete, ts.URL+"/missing", nil, nil)
		se, ok := errors.AsType[*StatusError](err)
		if !ok {
			t.Fatalf("DoJSON: got %v, want a *StatusError", err)
		}
		if se.StatusCode != http.StatusNotFound || se.Method != http.MethodDelete {
			t.Errorf("StatusError: got %d %s, want 404 DELETE", se.StatusCode, se.Method)
		}
	})
}

func TestDefaultUserAgent(t *testing.T) {
	var ua atomic.Value
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ua.Store(r.Header.Get("User-Agent"))
	}))
	defer ts.Close()
	c, err := New(DefaultConfig(), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tc := range []struct {
		name, set string
		check     func(string) bool
		want      string
	}{
		{"default", "", func(s string) bool { return strings.HasPrefix(s, "warmpool") }, `starting "warmpool"`},
		{"own", "my-service/1.2", func(s string) bool { return s == "my-service/1.2" }, `"my-service/1.2"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, ts.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.set != "" {
				req.Header.Set("User-Agent", tc.set)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			drainStatus(resp)
			if got, _ := ua.Load().(string); !tc.check(got) {
				t.Errorf("User-Agent at the server: got %q, want %s", got, tc.want)
			}
		})
	}
}

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
			time.Sleep(5 * time.Millisecond) // a poll: nothing but a refused call tells that Shutdown began
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
