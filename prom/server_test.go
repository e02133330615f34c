package prom

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/refserver"
)

// serverMetrics is the exposition of NewServerCollector; the verbs are the
// ServerStats fields in order.
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

func expectServer(s ServerStats) string {
	return fmt.Sprintf(serverMetrics, s.Accepted, s.Open, s.PeakOpen, s.Closed, s.Refused, s.Requests, s.InFlight)
}

func fixedStats(s ServerStats) func() ServerStats { return func() ServerStats { return s } }

// refserverStats adapts a reference server's counters, as warmpool serve does.
func refserverStats(srv *refserver.Server) func() ServerStats {
	return func() ServerStats {
		st := srv.Stats()
		return ServerStats{Accepted: st.Accepted, Open: st.Open, PeakOpen: st.PeakOpen, Closed: st.Closed,
			Refused: st.Refused, Requests: st.Requests, InFlight: st.InFlight}
	}
}

func TestServerCollector(t *testing.T) {
	t.Run("fixed", func(t *testing.T) {
		s := ServerStats{Accepted: 7, Open: 3, PeakOpen: 5, Closed: 4, Refused: 1, Requests: 1000, InFlight: 2}
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(NewServerCollector(fixedStats(s)))
		if err := testutil.GatherAndCompare(reg, strings.NewReader(expectServer(s))); err != nil {
			t.Error(err)
		}
	})

	t.Run("refserver", func(t *testing.T) {
		srv := startServer(t, refserver.Options{})
		c := newClient(t, warmpool.DefaultConfig())
		col := NewServerCollector(refserverStats(srv))
		mustSend(t, c, srv.URL()+"/answer", 5)
		// Five requests, one after the other, on one pooled connection.
		want := expectServer(ServerStats{Accepted: 1, Open: 1, PeakOpen: 1, Requests: 5})
		if err := testutil.CollectAndCompare(col, strings.NewReader(want)); err != nil {
			t.Errorf("after 5 requests:\n%v", err)
		}
		c.Close()
		srv.Close() // waits until the server has seen the connection close
		want = expectServer(ServerStats{Accepted: 1, Open: 0, PeakOpen: 1, Closed: 1, Requests: 5})
		if err := testutil.CollectAndCompare(col, strings.NewReader(want)); err != nil {
			t.Errorf("after Close:\n%v", err)
		}
	})

	t.Run("options", func(t *testing.T) {
		col := NewServerCollector(fixedStats(ServerStats{Requests: 3}),
			WithNamespace("frontend"), WithConstLabels(prometheus.Labels{"backend": "ref"}))
		want := `
# HELP frontend_server_requests_total Requests the server received, on any path.
# TYPE frontend_server_requests_total counter
frontend_server_requests_total{backend="ref"} 3
`
		if err := testutil.CollectAndCompare(col, strings.NewReader(want), "frontend_server_requests_total"); err != nil {
			t.Error(err)
		}
	})
}

// TestHandler scrapes Handler over HTTP: the text format, every collector's
// metrics, and nothing else.
func TestHandler(t *testing.T) {
	srv := startServer(t, refserver.Options{})
	reqs := NewRequestCollector()
	c := newClient(t, warmpool.DefaultConfig(), warmpool.WithHooks(reqs.Hooks()))
	mustSend(t, c, srv.URL()+"/answer", 2)

	ts := httptest.NewServer(Handler(NewServerCollector(refserverStats(srv)), NewCollector(c), reqs))
	defer ts.Close()
	resp, err := ts.Client().Get(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status: got %d, want 200; body %q", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type: got %q, want the text format", ct)
	}
	text := string(body)
	p := port(t, srv.Addr())
	for _, want := range []string{
		"warmpool_server_open_connections 1\n",
		"warmpool_server_requests_total 2\n",
		fmt.Sprintf("warmpool_connections_created_total{endpoint=\"\",server_address=\"127.0.0.1\",server_port=%q} 1\n", p),
		fmt.Sprintf("warmpool_connections_closed_total{endpoint=\"\",server_address=\"127.0.0.1\",server_port=%q,warmpool_close_reason=\"unused\"} 0\n", p),
		fmt.Sprintf("warmpool_responses_total{http_response_status_code=\"200\",server_address=\"127.0.0.1\",server_port=%q} 2\n", p),
	} {
		if !strings.Contains(text, want) {
			t.Errorf("body lacks %q:\n%s", want, text)
		}
	}
	for line := range strings.Lines(text) {
		if name, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(line, "# HELP "), "# TYPE "), " "); !strings.HasPrefix(name, "warmpool_") {
			t.Errorf("unexpected metric: %q", line)
		}
	}
}

func TestHandlerPanicsOnDuplicates(t *testing.T) {
	col := NewServerCollector(fixedStats(ServerStats{}))
	defer func() {
		if recover() == nil {
			t.Error("Handler with the same metrics twice did not panic")
		}
	}()
	Handler(col, NewServerCollector(fixedStats(ServerStats{})))
}
