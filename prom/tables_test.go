package prom

import (
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/refserver"
)

// TestCollectorHasEveryTableEntry: a scrape has a series of every close
// reason, dial failure kind and error kind of warmpool's tables, from the
// first request on, whatever the tables hold.
func TestCollectorHasEveryTableEntry(t *testing.T) {
	srv := startServer(t, refserver.Options{})
	c := newClient(t, warmpool.DefaultConfig())
	mustSend(t, c, srv.URL()+"/answer", 1)
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(c))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		metric, label string
		want          []string
	}{
		{"warmpool_connections_closed_total", "warmpool_close_reason", warmpool.CloseReasonNames()},
		{"warmpool_dial_failures_total", "warmpool_dial_failure_kind", warmpool.DialFailureKinds()},
		{"warmpool_attempt_failures_total", "error_type", warmpool.ErrorKinds()},
	} {
		var got []string
		for _, f := range families {
			if f.GetName() != tc.metric {
				continue
			}
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == tc.label {
						got = append(got, l.GetValue())
					}
				}
			}
		}
		for _, v := range tc.want {
			if !slices.Contains(got, v) {
				t.Errorf("%s has no series %s=%q; it has %v", tc.metric, tc.label, v, got)
			}
		}
	}
}
