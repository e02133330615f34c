package warmpool

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/refserver"
)

func TestHooksCompose(t *testing.T) {
	srv := startServer(t, refserver.Options{})
	var (
		mu    sync.Mutex
		calls []string
	)
	note := func(s string) {
		mu.Lock()
		calls = append(calls, s)
		mu.Unlock()
	}
	hooks := func(name string) Hooks {
		return Hooks{
			ConnOpened:  func(ConnInfo) { note(name + ".ConnOpened") },
			RequestDone: func(RequestInfo) { note(name + ".RequestDone") },
		}
	}
	c := newClient(t, srv, DefaultConfig(), WithHooks(hooks("a")), WithHooks(hooks("b")))
	if err := post(c, srv.URL()+"/answer"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := slices.Clone(calls)
	mu.Unlock()
	want := []string{"a.ConnOpened", "b.ConnOpened", "a.RequestDone", "b.RequestDone"}
	if !slices.Equal(got, want) {
		t.Errorf("hook calls: got %v, want %v", got, want)
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
