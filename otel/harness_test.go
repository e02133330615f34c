package warmpoolotel

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/warmpool/warmpool"
)

// backend is an httptest server on 127.0.0.1 that counts its connections,
// the fair measure of the client's pool, and answers with the status given
// in the "status" query parameter (200 without one).
type backend struct {
	*httptest.Server
	open, accepted atomic.Int64

	mu           sync.Mutex
	traceparents []string
}

func newBackend(t testing.TB) *backend {
	t.Helper()
	b := &backend{}
	b.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.traceparents = append(b.traceparents, r.Header.Get("traceparent"))
		b.mu.Unlock()
		_, _ = io.Copy(io.Discard, r.Body)
		code := http.StatusOK
		if s := r.URL.Query().Get("status"); s != "" {
			code, _ = strconv.Atoi(s)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, `{"answer":42}`)
	}))
	b.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			b.accepted.Add(1)
			b.open.Add(1)
		case http.StateClosed, http.StateHijacked:
			b.open.Add(-1)
		}
	}
	b.Start() // httptest listens on 127.0.0.1
	t.Cleanup(b.Close)
	return b
}

// port is the backend's port, as server.port reports it.
func (b *backend) port(t testing.TB) int {
	t.Helper()
	_, p, err := net.SplitHostPort(b.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// newReader returns a ManualReader on a fresh SDK MeterProvider, shut down
// with the test.
func newReader(t testing.TB) (*sdkmetric.ManualReader, *sdkmetric.MeterProvider) {
	t.Helper()
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return r, mp
}

func newMetrics(t testing.TB, mp *sdkmetric.MeterProvider, opts ...Option) *Metrics {
	t.Helper()
	m, err := New(mp, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

func newClient(t testing.TB, cfg warmpool.Config, opts ...warmpool.Option) *warmpool.Client {
	t.Helper()
	c, err := warmpool.New(cfg, opts...)
	if err != nil {
		t.Fatalf("warmpool.New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// get sends a GET to url and reads the answer to the end.
func get(c *warmpool.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

func mustGet(t testing.TB, c *warmpool.Client, url string, n int) {
	t.Helper()
	for i := range n {
		if _, err := get(c, url); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
}

func collect(t testing.TB, r *sdkmetric.ManualReader) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	return rm
}

// find returns the metric name of warmpool's scope in rm.
func find(rm metricdata.ResourceMetrics, name string) (metricdata.Metrics, bool) {
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != ScopeName {
			continue
		}
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m, true
			}
		}
	}
	return metricdata.Metrics{}, false
}

func mustFind(t testing.TB, rm metricdata.ResourceMetrics, name string) metricdata.Metrics {
	t.Helper()
	m, ok := find(rm, name)
	if !ok {
		t.Fatalf("no metric %s collected", name)
	}
	return m
}

// sum returns the int64 sum data of m, checking its monotonicity.
func sum(t testing.TB, m metricdata.Metrics, monotonic bool) metricdata.Sum[int64] {
	t.Helper()
	s, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("%s is %T, want metricdata.Sum[int64]", m.Name, m.Data)
	}
	if s.IsMonotonic != monotonic {
		t.Errorf("%s monotonic = %v, want %v", m.Name, s.IsMonotonic, monotonic)
	}
	return s
}

// value returns the data point of s whose attributes are exactly want.
func value[N int64 | float64](t testing.TB, name string, points []metricdata.DataPoint[N], want ...attribute.KeyValue) N {
	t.Helper()
	set := attribute.NewSet(want...)
	for _, p := range points {
		if p.Attributes.Equals(&set) {
			return p.Value
		}
	}
	t.Errorf("%s has no point with attributes %v; points: %v", name, set.Encoded(attribute.DefaultEncoder()), pointAttrs(points))
	return 0
}

func pointAttrs[N int64 | float64](points []metricdata.DataPoint[N]) []string {
	var s []string
	for _, p := range points {
		s = append(s, p.Attributes.Encoded(attribute.DefaultEncoder()))
	}
	return s
}

// eventually polls cond for up to two seconds: the server learns of a
// closed connection a moment after the client closed it.
func eventually(cond func() bool) bool {
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

func TestParseHost(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []attribute.KeyValue
	}{
		{"127.0.0.1:8080", []attribute.KeyValue{attribute.String("server.address", "127.0.0.1"), attribute.Int("server.port", 8080)}},
		{"[::1]:443", []attribute.KeyValue{attribute.String("server.address", "::1"), attribute.Int("server.port", 443)}},
		{"example.com", []attribute.KeyValue{attribute.String("server.address", "example.com")}},
	} {
		got, want := attribute.NewSet(parseHost(tc.in).kvs()...), attribute.NewSet(tc.want...)
		if !got.Equals(&want) {
			t.Errorf("parseHost(%q) = %s, want %s", tc.in, got.Encoded(attribute.DefaultEncoder()), want.Encoded(attribute.DefaultEncoder()))
		}
	}
}
