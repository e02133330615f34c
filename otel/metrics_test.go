package warmpoolotel

import (
	"slices"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/warmpool/warmpool"
)

func TestRequestDuration(t *testing.T) {
	srv := newBackend(t)
	r, mp := newReader(t)
	m := newMetrics(t, mp)
	cfg := warmpool.DefaultConfig()
	cfg.MaxRetries = -1 // one attempt per call, so the counts are exact
	c := newClient(t, cfg, warmpool.WithHooks(m.Hooks()))

	mustGet(t, c, srv.URL+"/answer", 10)
	mustGet(t, c, srv.URL+"/answer?status=503", 3)
	mustGet(t, c, srv.URL+"/answer?status=404", 1)
	refused := closedAddr(t)
	for range 2 {
		if _, err := get(c, "http://"+refused+"/answer"); err == nil {
			t.Fatal("request to a closed port succeeded")
		}
	}

	got := mustFind(t, collect(t, r), "http.client.request.duration")
	if got.Unit != "s" {
		t.Errorf("unit %q, want s", got.Unit)
	}
	h, ok := got.Data.(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("data is %T, want a float64 histogram", got.Data)
	}
	addr, port := attribute.String("server.address", "127.0.0.1"), attribute.Int("server.port", srv.port(t))
	refusedPort := parseHost(refused).port
	get := attribute.String("http.request.method", "GET")
	status := func(code int) attribute.KeyValue { return attribute.Int("http.response.status_code", code) }
	errType := func(s string) attribute.KeyValue { return attribute.String("error.type", s) }
	key := func(kv ...attribute.KeyValue) attribute.Distinct { s := attribute.NewSet(kv...); return s.Equivalent() }
	want := map[attribute.Distinct]uint64{
		key(addr, port, get, status(200)):                 10,
		key(addr, port, get, status(503), errType("503")): 3,
		key(addr, port, get, status(404), errType("404")): 1,
		key(addr, refusedPort, get, errType("refused")):   2,
	}
	for _, p := range h.DataPoints {
		n, ok := want[p.Attributes.Equivalent()]
		if !ok {
			t.Errorf("unexpected series %s (count %d)", p.Attributes.Encoded(attribute.DefaultEncoder()), p.Count)
			continue
		}
		if p.Count != n {
			t.Errorf("%s: count %d, want %d", p.Attributes.Encoded(attribute.DefaultEncoder()), p.Count, n)
		}
		if !slices.Equal(p.Bounds, RequestDurationBuckets) {
			t.Errorf("bounds %v, want %v", p.Bounds, RequestDurationBuckets)
		}
		if p.Sum <= 0 {
			t.Errorf("%s: sum %v, want > 0", p.Attributes.Encoded(attribute.DefaultEncoder()), p.Sum)
		}
	}
	if len(h.DataPoints) != len(want) {
		t.Errorf("%d series, want %d", len(h.DataPoints), len(want))
	}
}

// Every attempt of a retried call is a request of its own.
func TestRequestDurationCountsAttempts(t *testing.T) {
	srv := newBackend(t)
	r, mp := newReader(t)
	m := newMetrics(t, mp)
	cfg := warmpool.DefaultConfig()
	cfg.MaxRetries = 2
	cfg.RetryBackoffFactor = 0.001
	c := newClient(t, cfg, warmpool.WithHooks(m.Hooks()))
	reg, err := m.RegisterStats(c)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Unregister()

	if code, err := get(c, srv.URL+"/answer?status=503"); err != nil || code != 503 {
		t.Fatalf("GET: %d, %v; want the last 503", code, err)
	}
	rm := collect(t, r)
	h := mustFind(t, rm, "http.client.request.duration").Data.(metricdata.Histogram[float64])
	if len(h.DataPoints) != 1 || h.DataPoints[0].Count != 3 {
		t.Errorf("request.duration points %+v, want one series of count 3", h.DataPoints)
	}
	host := []attribute.KeyValue{attribute.String("server.address", "127.0.0.1"), attribute.Int("server.port", srv.port(t))}
	if n := value(t, "warmpool.attempts", sum(t, mustFind(t, rm, "warmpool.attempts"), true).DataPoints, host...); n != 3 {
		t.Errorf("warmpool.attempts = %d, want 3", n)
	}
	if n := value(t, "warmpool.retries", sum(t, mustFind(t, rm, "warmpool.retries"), true).DataPoints); n != 2 {
		t.Errorf("warmpool.retries = %d, want 2", n)
	}
}

func TestStats(t *testing.T) {
	srv := newBackend(t)
	r, mp := newReader(t)
	m := newMetrics(t, mp)
	c := newClient(t, warmpool.DefaultConfig(), warmpool.WithHooks(m.Hooks()))
	reg, err := m.RegisterStats(c)
	if err != nil {
		t.Fatal(err)
	}
	mustGet(t, c, srv.URL+"/answer", 10)

	host := []attribute.KeyValue{attribute.String("server.address", "127.0.0.1"), attribute.Int("server.port", srv.port(t))}
	with := func(kv attribute.KeyValue) []attribute.KeyValue { return append(slices.Clip(host), kv) }
	rm := collect(t, r)

	for _, tc := range []struct {
		name      string
		unit      string
		monotonic bool
		attrs     []attribute.KeyValue
		want      int64
	}{
		{"http.client.open_connections", "{connection}", false, with(attribute.String("http.connection.state", "active")), 0},
		{"http.client.open_connections", "{connection}", false, with(attribute.String("http.connection.state", "idle")), 1},
		{"http.client.active_requests", "{request}", false, host, 0},
		{"warmpool.connections.dialing", "{connection}", false, host, 0},
		{"warmpool.connections.created", "{connection}", true, host, 1},
		{"warmpool.connections.closed", "{connection}", true, with(attribute.String("warmpool.close.reason", "client")), 0},
		{"warmpool.connections.closed", "{connection}", true, with(attribute.String("warmpool.close.reason", "unused")), 0},
		{"warmpool.dial.failures", "{dial}", true, with(attribute.String("warmpool.dial.failure.kind", "refused")), 0},
		{"warmpool.tls.handshakes", "{handshake}", true, host, 0},
		{"warmpool.attempts", "{attempt}", true, host, 10},
		{"warmpool.attempts.reused", "{attempt}", true, host, 9},
		{"warmpool.pool.waiting", "{request}", false, host, 0},
		{"warmpool.pool.waits", "{request}", true, host, 0},
		{"warmpool.pool.timeouts", "{request}", true, host, 0},
		{"warmpool.retries", "{retry}", true, nil, 0},
		{"warmpool.retry.budget.refusals", "{retry}", true, nil, 0},
		{"warmpool.token.fetches", "{fetch}", true, nil, 0},
		{"warmpool.token.fetch.failures", "{fetch}", true, nil, 0},
		{"warmpool.concurrency.limit", "{request}", false, host, 0},
		{"warmpool.concurrency.waiting", "{request}", false, host, 0},
		{"warmpool.concurrency.waits", "{request}", true, host, 0},
		{"warmpool.requests.rejected", "{request}", true, with(attribute.String("warmpool.rejection.reason", "overloaded")), 0},
		{"warmpool.requests.rejected", "{request}", true, with(attribute.String("warmpool.rejection.reason", "circuit_open")), 0},
		{"warmpool.circuit.state", "{circuit}", false, with(attribute.String("warmpool.circuit.state", "closed")), 1},
		{"warmpool.circuit.state", "{circuit}", false, with(attribute.String("warmpool.circuit.state", "open")), 0},
		{"warmpool.circuit.opens", "{open}", true, host, 0},
		{"warmpool.hedges", "{request}", true, nil, 0},
		{"warmpool.hedge.wins", "{request}", true, nil, 0},
	} {
		got := mustFind(t, rm, tc.name)
		if got.Unit != tc.unit {
			t.Errorf("%s: unit %q, want %q", tc.name, got.Unit, tc.unit)
		}
		if v := value(t, tc.name, sum(t, got, tc.monotonic).DataPoints, tc.attrs...); v != tc.want {
			t.Errorf("%s%v = %d, want %d", tc.name, tc.attrs, v, tc.want)
		}
	}
	for _, name := range []string{"warmpool.pool.wait.duration", "warmpool.tls.handshake.duration"} {
		got := mustFind(t, rm, name)
		s, ok := got.Data.(metricdata.Sum[float64])
		if !ok || !s.IsMonotonic || got.Unit != "s" {
			t.Errorf("%s: %T monotonic %v unit %q, want a monotonic float64 sum in s", name, got.Data, s.IsMonotonic, got.Unit)
		}
	}
	if g, ok := mustFind(t, rm, "warmpool.latency.recent").Data.(metricdata.Gauge[float64]); !ok || len(g.DataPoints) != 4 {
		t.Errorf("warmpool.latency.recent: %+v, want a gauge of 4 percentiles (min, p50, p95, p99)", g)
	} else if v := value(t, "latency min", g.DataPoints, with(attribute.String("warmpool.latency.percentile", "min"))...); v <= 0 {
		t.Errorf("warmpool.latency.recent{min} = %g after 10 requests, want > 0", v)
	}
	closed := sum(t, mustFind(t, rm, "warmpool.connections.closed"), true)
	if n := len(warmpool.CloseReasonNames()); len(closed.DataPoints) != n {
		t.Errorf("warmpool.connections.closed has %d series, want one per close reason, %d", len(closed.DataPoints), n)
	}

	// Close: the connection is counted closed by the client, and its
	// lifetime recorded by the ConnClosed hook.
	c.Close()
	rm = collect(t, r)
	if v := value(t, "closed", sum(t, mustFind(t, rm, "warmpool.connections.closed"), true).DataPoints,
		with(attribute.String("warmpool.close.reason", "client"))...); v != 1 {
		t.Errorf("warmpool.connections.closed{client} = %d after Close, want 1", v)
	}
	if v := value(t, "open", sum(t, mustFind(t, rm, "http.client.open_connections"), false).DataPoints,
		with(attribute.String("http.connection.state", "idle"))...); v != 0 {
		t.Errorf("idle connections = %d after Close, want 0", v)
	}
	cd := mustFind(t, rm, "http.client.connection.duration")
	h := cd.Data.(metricdata.Histogram[float64])
	want := attribute.NewSet(with(attribute.String("warmpool.close.reason", "client"))...)
	if cd.Unit != "s" || len(h.DataPoints) != 1 || h.DataPoints[0].Count != 1 || !h.DataPoints[0].Attributes.Equals(&want) {
		t.Errorf("connection.duration unit %q points %+v, want one connection closed by the client", cd.Unit, h.DataPoints)
	} else if !slices.Equal(h.DataPoints[0].Bounds, ConnectionDurationBuckets) {
		t.Errorf("connection.duration bounds %v, want %v", h.DataPoints[0].Bounds, ConnectionDurationBuckets)
	}

	// Unregistered, the client is no longer observed.
	if err := reg.Unregister(); err != nil {
		t.Fatal(err)
	}
	if _, ok := find(collect(t, r), "warmpool.attempts"); ok {
		t.Error("warmpool.attempts still collected after Unregister")
	}
}

// The pool as the client reports it matches the server's count of open
// connections after a concurrent load.
func TestOpenConnectionsMatchServer(t *testing.T) {
	srv := newBackend(t)
	r, mp := newReader(t)
	m := newMetrics(t, mp)
	c := newClient(t, warmpool.DefaultConfig(), warmpool.WithHooks(m.Hooks()))
	reg, err := m.RegisterStats(c)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Unregister()

	const workers, perWorker = 8, 25
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() { mustGet(t, c, srv.URL+"/answer", perWorker) })
	}
	wg.Wait()

	var open, attempts int64
	ok := eventually(func() bool {
		rm := collect(t, r)
		open = 0
		for _, p := range sum(t, mustFind(t, rm, "http.client.open_connections"), false).DataPoints {
			open += p.Value
		}
		attempts = sum(t, mustFind(t, rm, "warmpool.attempts"), true).DataPoints[0].Value
		return open == srv.open.Load()
	})
	if !ok || open == 0 {
		t.Errorf("open connections active+idle = %d, server has %d open", open, srv.open.Load())
	}
	if attempts != workers*perWorker {
		t.Errorf("warmpool.attempts = %d, want %d", attempts, workers*perWorker)
	}
	h := mustFind(t, collect(t, r), "http.client.request.duration").Data.(metricdata.Histogram[float64])
	if len(h.DataPoints) != 1 || h.DataPoints[0].Count != workers*perWorker {
		t.Errorf("request.duration points %+v, want one series of count %d", h.DataPoints, workers*perWorker)
	}
}

// Two clients on one provider, told apart by WithAttributes.
func TestWithAttributes(t *testing.T) {
	srv := newBackend(t)
	r, mp := newReader(t)
	for name, n := range map[string]int{"a": 2, "b": 3} {
		m := newMetrics(t, mp, WithAttributes(attribute.String("warmpool.client", name)))
		c := newClient(t, warmpool.DefaultConfig(), warmpool.WithHooks(m.Hooks()))
		reg, err := m.RegisterStats(c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = reg.Unregister() })
		mustGet(t, c, srv.URL+"/answer", n)
	}
	rm := collect(t, r)
	host := []attribute.KeyValue{attribute.String("server.address", "127.0.0.1"), attribute.Int("server.port", srv.port(t))}
	attempts := sum(t, mustFind(t, rm, "warmpool.attempts"), true).DataPoints
	retries := sum(t, mustFind(t, rm, "warmpool.retries"), true).DataPoints
	for name, n := range map[string]int64{"a": 2, "b": 3} {
		client := attribute.String("warmpool.client", name)
		if got := value(t, "warmpool.attempts", attempts, append(slices.Clip(host), client)...); got != n {
			t.Errorf("warmpool.attempts{warmpool.client=%s} = %d, want %d", name, got, n)
		}
		value(t, "warmpool.retries", retries, client)
	}
	h := mustFind(t, rm, "http.client.request.duration").Data.(metricdata.Histogram[float64])
	if len(h.DataPoints) != 2 {
		t.Errorf("request.duration has %d series, want one per client", len(h.DataPoints))
	}
}

func TestNewWithGlobalProvider(t *testing.T) {
	m, err := New(nil) // the global provider, a no-op unless the program set one
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, warmpool.DefaultConfig(), warmpool.WithHooks(m.Hooks()))
	reg, err := m.RegisterStats(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Unregister(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.RegisterStats(nil); err == nil {
		t.Error("RegisterStats(nil) succeeded, want an error")
	}
}
