package warmpoolotel

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/warmpool/warmpool"
)

// tracedClient returns an *http.Client on c's pool whose calls otelhttp
// traces into exp. It wraps HTTPClient's transport, which runs a whole call,
// retries included: one span per call. (WithTransportMiddleware gives a span
// per attempt, as the conventions ask: TestTracePerAttempt.)
func tracedClient(t testing.TB, c *warmpool.Client) (*http.Client, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	hc := *c.HTTPClient() // a copy: the client's own is shared
	hc.Transport = otelhttp.NewTransport(hc.Transport,
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(propagation.TraceContext{}))
	return &hc, exp
}

func TestTraceThroughHTTPClient(t *testing.T) {
	srv := newBackend(t)
	cfg := warmpool.DefaultConfig()
	cfg.MaxRetries = -1
	c := newClient(t, cfg)
	hc, exp := tracedClient(t, c)

	for _, status := range []int{200, 503} {
		resp, err := hc.Get(srv.URL + "/answer?status=" + strconv.Itoa(status))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	srv.mu.Lock()
	parents := append([]string(nil), srv.traceparents...)
	srv.mu.Unlock()
	for i, want := range []struct {
		status int
		code   codes.Code
	}{{200, codes.Unset}, {503, codes.Error}} {
		s := spans[i]
		if s.SpanKind != trace.SpanKindClient {
			t.Errorf("span %d kind %v, want client", i, s.SpanKind)
		}
		if got := attr(s.Attributes, "http.response.status_code"); got != attribute.IntValue(want.status) {
			t.Errorf("span %d http.response.status_code = %v, want %d", i, got.Emit(), want.status)
		}
		if s.Status.Code != want.code {
			t.Errorf("span %d status %v, want %v", i, s.Status.Code, want.code)
		}
		// The server got the span's context: traceparent is
		// 00-<trace id>-<span id>-<flags>.
		tp := strings.Split(parents[i], "-")
		if len(tp) != 4 || tp[1] != s.SpanContext.TraceID().String() || tp[2] != s.SpanContext.SpanID().String() {
			t.Errorf("request %d traceparent %q, want one naming trace %s span %s",
				i, parents[i], s.SpanContext.TraceID(), s.SpanContext.SpanID())
		}
	}
	if got := c.Stats().Requests; got != 2 {
		t.Errorf("client Stats().Requests = %d, want 2: the traced calls rode on the pool", got)
	}
}

func attr(kvs []attribute.KeyValue, key attribute.Key) attribute.Value {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// TestTracePerAttempt wraps the pool's transport with otelhttp through
// warmpool.WithTransportMiddleware: a call retried three times is four spans, one
// per attempt, each with its status, and the server receives each one's
// traceparent.
func TestTracePerAttempt(t *testing.T) {
	srv := newBackend(t)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	cfg := warmpool.DefaultConfig()
	cfg.RetryBackoffFactor = 0.001 // retries at once
	c := newClient(t, cfg, warmpool.WithTransportMiddleware(func(rt http.RoundTripper) http.RoundTripper {
		return otelhttp.NewTransport(rt, otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(propagation.TraceContext{}))
	}))

	// 503 is retried for any method: four attempts, all answered 503.
	err := c.DoJSON(context.Background(), http.MethodGet, srv.URL+"/answer?status=503", nil, nil)
	var se *warmpool.StatusError
	if !errors.As(err, &se) || se.Attempts != 4 {
		t.Fatalf("got %v, want a *StatusError after 4 attempts (max_retries 3)", err)
	}
	spans := exp.GetSpans()
	if len(spans) != se.Attempts {
		t.Fatalf("%d spans, want one per attempt, %d", len(spans), se.Attempts)
	}
	srv.mu.Lock()
	parents := append([]string(nil), srv.traceparents...)
	srv.mu.Unlock()
	for i, s := range spans {
		if got := attr(s.Attributes, "http.response.status_code"); got != attribute.IntValue(503) || s.Status.Code != codes.Error {
			t.Errorf("span %d: status code %v, span status %v; want 503 and Error", i, got.Emit(), s.Status.Code)
		}
		if tp := strings.Split(parents[i], "-"); len(tp) != 4 || tp[2] != s.SpanContext.SpanID().String() {
			t.Errorf("attempt %d traceparent %q, want span %s", i, parents[i], s.SpanContext.SpanID())
		}
	}
}
