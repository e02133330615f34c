package prom

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/refserver"
)

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

func TestRequestCollector(t *testing.T) {
	srv := startServer(t, refserver.Options{})
	reqs := NewRequestCollector(WithBuckets([]float64{0.001, 0.01, 60}))
	cfg := warmpool.DefaultConfig()
	cfg.MaxRetries = -1 // one attempt per call, so the counts are exact
	c := newClient(t, cfg, warmpool.WithHooks(reqs.Hooks()))
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(reqs)

	mustSend(t, c, srv.URL()+"/answer", 5)
	mustSend(t, c, srv.URL()+"/answer?status=503", 3)
	mustSend(t, c, srv.URL()+"/answer?status=429", 1)
	refused := closedAddr(t)
	for range 2 {
		if _, err := send(c, "http://"+refused+"/answer"); err == nil {
			t.Fatal("request to a closed port succeeded")
		}
	}

	want := fmt.Sprintf(`
# HELP warmpool_responses_total Responses received, by status code, retried attempts included.
# TYPE warmpool_responses_total counter
warmpool_responses_total{http_response_status_code="200",server_address="127.0.0.1",server_port="%[1]s"} 5
warmpool_responses_total{http_response_status_code="429",server_address="127.0.0.1",server_port="%[1]s"} 1
warmpool_responses_total{http_response_status_code="503",server_address="127.0.0.1",server_port="%[1]s"} 3
`, port(t, srv.Addr()))
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "warmpool_responses_total"); err != nil {
		t.Error(err)
	}

	counts := histogramCounts(t, reg, "warmpool_request_duration_seconds")
	p := port(t, srv.Addr())
	wantCounts := map[string]uint64{
		"127.0.0.1 " + p + " POST 200 ":                    5,
		"127.0.0.1 " + p + " POST 503 503":                 3,
		"127.0.0.1 " + p + " POST 429 429":                 1,
		"127.0.0.1 " + port(t, refused) + " POST  refused": 2,
	}
	for k, n := range wantCounts {
		if counts[k] != n {
			t.Errorf("request_duration_seconds_count{%s} = %d, want %d", k, counts[k], n)
		}
	}
	if len(counts) != len(wantCounts) {
		t.Errorf("histogram series %v, want %v", counts, wantCounts)
	}
}

// histogramCounts maps "server_address server_port http_request_method
// http_response_status_code error_type" to the sample count of each series of
// the histogram family name.
func histogramCounts(t testing.TB, g prometheus.Gatherer, name string) map[string]uint64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := make(map[string]uint64)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := labels(m)
			key := strings.Join([]string{l["server_address"], l["server_port"], l["http_request_method"],
				l["http_response_status_code"], l["error_type"]}, " ")
			counts[key] = m.GetHistogram().GetSampleCount()
			if b := m.GetHistogram().GetBucket(); len(b) != 3 {
				t.Errorf("%d buckets, want the 3 of WithBuckets", len(b))
			}
		}
	}
	return counts
}

func labels(m *dto.Metric) map[string]string {
	l := make(map[string]string)
	for _, p := range m.GetLabel() {
		l[p.GetName()] = p.GetValue()
	}
	return l
}

func TestStatusCodeLabel(t *testing.T) {
	for _, tc := range []struct {
		in   int
		want string
	}{{100, "100"}, {200, "200"}, {599, "599"}, {600, "600"}, {42, "42"}} {
		if got := statusCode(tc.in); got != tc.want {
			t.Errorf("statusCode(%d) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
