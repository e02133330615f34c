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

// A backend measured next to its client: the server's connection counts and
// the client's pool, served on one /metrics endpoint.
func ExampleHandler() {
	srv, err := refserver.New(refserver.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	client, err := warmpool.New(warmpool.DefaultConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	server := prom.NewServerCollector(func() prom.ServerStats {
		st := srv.Stats()
		return prom.ServerStats{Accepted: st.Accepted, Open: st.Open, PeakOpen: st.PeakOpen, Closed: st.Closed,
			Refused: st.Refused, Requests: st.Requests, InFlight: st.InFlight}
	})
	metrics := prom.Handler(server, prom.NewCollector(client)) // mount as "GET /metrics"

	for range 3 {
		if err := client.PostJSON(context.Background(), srv.URL()+"/answer", map[string]string{}, nil); err != nil {
			log.Fatal(err)
		}
	}

	rec := httptest.NewRecorder()
	metrics.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for line := range strings.Lines(rec.Body.String()) {
		if strings.HasPrefix(line, "warmpool_server_connections_accepted_total") ||
			strings.HasPrefix(line, "warmpool_server_requests_total") ||
			strings.HasPrefix(line, "warmpool_connections_created_total") {
			_, port, _ := strings.Cut(srv.Addr(), ":")
			fmt.Print(strings.ReplaceAll(line, `"`+port+`"`, `"PORT"`))
		}
	}
	// Output:
	// warmpool_connections_created_total{endpoint="",server_address="127.0.0.1",server_port="PORT"} 1
	// warmpool_server_connections_accepted_total 1
	// warmpool_server_requests_total 3
}
