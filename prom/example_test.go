package prom_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/refserver"
	"github.com/warmpool/warmpool/prom"
)

func Example() {
	srv, err := refserver.New(refserver.Options{}) // a stand-in backend on loopback
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	// The request collector feeds on a hook, so it comes first.
	reqs := prom.NewRequestCollector()
	client, err := warmpool.New(warmpool.DefaultConfig(), warmpool.WithHooks(reqs.Hooks()))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	reg := prometheus.NewRegistry() // serve it with promhttp.HandlerFor(reg, ...)
	reg.MustRegister(prom.NewCollector(client), reqs)

	for range 3 {
		if err := client.PostJSON(context.Background(), srv.URL()+"/answer", map[string]string{}, nil); err != nil {
			log.Fatal(err)
		}
	}

	mfs, err := reg.Gather()
	if err != nil {
		log.Fatal(err)
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "warmpool_connections_created_total", "warmpool_attempts_reused_total", "warmpool_responses_total":
			fmt.Println(mf.GetName(), mf.GetMetric()[0].GetCounter().GetValue())
		case "warmpool_request_duration_seconds":
			fmt.Println(mf.GetName(), "count", mf.GetMetric()[0].GetHistogram().GetSampleCount())
		}
	}
	// Output:
	// warmpool_attempts_reused_total 2
	// warmpool_connections_created_total 1
	// warmpool_request_duration_seconds count 3
	// warmpool_responses_total 3
}

// A client's pool and its requests, served on one /metrics endpoint.
func ExampleHandler() {
	srv, err := refserver.New(refserver.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	reqs := prom.NewRequestCollector()
	client, err := warmpool.New(warmpool.DefaultConfig(), warmpool.WithHooks(reqs.Hooks()))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	metrics := prom.Handler(prom.NewCollector(client), reqs) // mount as "GET /metrics"

	for range 3 {
		if err := client.PostJSON(context.Background(), srv.URL()+"/answer", map[string]string{}, nil); err != nil {
			log.Fatal(err)
		}
	}

	rec := httptest.NewRecorder()
	metrics.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for line := range strings.Lines(rec.Body.String()) {
		if strings.HasPrefix(line, "warmpool_attempts_total") ||
			strings.HasPrefix(line, "warmpool_connections_created_total") ||
			strings.HasPrefix(line, "warmpool_responses_total") {
			_, port, _ := strings.Cut(srv.Addr(), ":")
			fmt.Print(strings.ReplaceAll(line, `"`+port+`"`, `"PORT"`))
		}
	}
	// Output:
	// warmpool_attempts_total{endpoint="",server_address="127.0.0.1",server_port="PORT"} 3
	// warmpool_connections_created_total{endpoint="",server_address="127.0.0.1",server_port="PORT"} 1
	// warmpool_responses_total{http_response_status_code="200",server_address="127.0.0.1",server_port="PORT"} 3
}
