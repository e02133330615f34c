package main

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/refserver"
)

// serverMetrics is the exposition of serverCollector; the verbs are the
// server's Accepted, Open, PeakOpen, Closed, Refused, Requests and InFlight.
const serverMetrics = `
# HELP warmpool_server_connections_accepted_total Connections the server accepted.
# TYPE warmpool_server_connections_accepted_total counter
warmpool_server_connections_accepted_total %d
# HELP warmpool_server_open_connections Connections open now, as the server sees them.
# TYPE warmpool_server_open_connections gauge
warmpool_server_open_connections %d
# HELP warmpool_server_peak_open_connections The most connections open at once since the server started.
# TYPE warmpool_server_peak_open_connections gauge
warmpool_server_peak_open_connections %d
# HELP warmpool_server_connections_closed_total Connections closed, by either side.
# TYPE warmpool_server_connections_closed_total counter
warmpool_server_connections_closed_total %d
# HELP warmpool_server_connections_refused_total Connections the server closed as soon as it accepted them, being at its connection limit.
# TYPE warmpool_server_connections_refused_total counter
warmpool_server_connections_refused_total %d
# HELP warmpool_server_requests_total Requests the server received, on any path.
# TYPE warmpool_server_requests_total counter
warmpool_server_requests_total %d
# HELP warmpool_server_requests_in_flight Requests the server is handling now.
# TYPE warmpool_server_requests_in_flight gauge
warmpool_server_requests_in_flight %d
`

func TestServerCollector(t *testing.T) {
	var served atomic.Pointer[refserver.Server]
	col := newServerCollector(&served)
	if err := testutil.CollectAndCompare(col, strings.NewReader(fmt.Sprintf(serverMetrics, 0, 0, 0, 0, 0, 0, 0))); err != nil {
		t.Errorf("before the server is stored, want zeros:\n%v", err)
	}

	srv := newRefserver(t, refserver.Options{})
	served.Store(srv)
	c, err := warmpool.New(warmpool.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 5 {
		if err := c.PostJSON(context.Background(), srv.URL()+"/answer", map[string]string{}, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Five requests, one after the other, on one pooled connection.
	if err := testutil.CollectAndCompare(col, strings.NewReader(fmt.Sprintf(serverMetrics, 1, 1, 1, 0, 0, 5, 0))); err != nil {
		t.Errorf("after 5 requests:\n%v", err)
	}
	c.Close()
	srv.Close() // waits until the server has seen the connection close
	if err := testutil.CollectAndCompare(col, strings.NewReader(fmt.Sprintf(serverMetrics, 1, 0, 1, 1, 0, 5, 0))); err != nil {
		t.Errorf("after Close:\n%v", err)
	}

	problems, err := testutil.CollectAndLint(col)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}
