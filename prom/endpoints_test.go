package prom

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/refserver"
)

// TestCollectorExportsEndpoints: a host name balanced over two addresses
// has one series per endpoint, labelled with the name and the endpoint, and
// warmpool_endpoints counts them by state.
func TestCollectorExportsEndpoints(t *testing.T) {
	a := startServer(t, refserver.Options{})
	p := port(t, a.Addr())
	startServer(t, refserver.Options{Addr: net.JoinHostPort("127.0.0.2", p)})

	cfg := warmpool.DefaultConfig()
	cfg.Balancer = "round_robin"
	reqs := NewRequestCollector()
	c := newClient(t, cfg, warmpool.WithHooks(reqs.Hooks()), warmpool.WithResolver(warmpool.StaticResolver(map[string][]string{
		"replicas.test": {"127.0.0.1", "127.0.0.2"},
	})))
	mustSend(t, c, "http://"+net.JoinHostPort("replicas.test", p)+"/answer", 10)

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(c), reqs)
	want := fmt.Sprintf(`
# HELP warmpool_attempts_total Request attempts that got a connection, retries included.
# TYPE warmpool_attempts_total counter
warmpool_attempts_total{endpoint="127.0.0.1:%[1]s",server_address="replicas.test",server_port="%[1]s"} 5
warmpool_attempts_total{endpoint="127.0.0.2:%[1]s",server_address="replicas.test",server_port="%[1]s"} 5
# HELP warmpool_endpoints Endpoints (addresses) of a balanced host name, by state: active, ejected or draining.
# TYPE warmpool_endpoints gauge
warmpool_endpoints{server_address="replicas.test",server_port="%[1]s",state="active"} 2
warmpool_endpoints{server_address="replicas.test",server_port="%[1]s",state="draining"} 0
warmpool_endpoints{server_address="replicas.test",server_port="%[1]s",state="ejected"} 0
# HELP warmpool_endpoint_ejections_total Times the endpoint was ejected after consecutive failures.
# TYPE warmpool_endpoint_ejections_total counter
warmpool_endpoint_ejections_total{endpoint="127.0.0.1:%[1]s",server_address="replicas.test",server_port="%[1]s"} 0
warmpool_endpoint_ejections_total{endpoint="127.0.0.2:%[1]s",server_address="replicas.test",server_port="%[1]s"} 0
# HELP warmpool_responses_total Responses received, by status code, retried attempts included.
# TYPE warmpool_responses_total counter
warmpool_responses_total{http_response_status_code="200",server_address="replicas.test",server_port="%[1]s"} 10
`, p)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"warmpool_attempts_total", "warmpool_endpoints", "warmpool_endpoint_ejections_total", "warmpool_responses_total"); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.CollectAndLint(NewCollector(c)); err != nil || len(problems) > 0 {
		t.Errorf("promlint: %v %v", problems, err)
	}
}
