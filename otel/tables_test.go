package warmpoolotel

import (
	"testing"

	"go.opentelemetry.io/otel/attribute"

	"github.com/warmpool/warmpool"
)

// TestStatsHaveEveryTableEntry: once a client has called a host, its
// closed-connection and dial-failure counters have a point for every close
// reason and dial failure kind of warmpool's tables, whatever they hold.
func TestStatsHaveEveryTableEntry(t *testing.T) {
	srv := newBackend(t)
	r, mp := newReader(t)
	m := newMetrics(t, mp)
	c := newClient(t, warmpool.DefaultConfig())
	mustGet(t, c, srv.URL+"/answer", 1)
	reg, err := m.RegisterStats(c)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Unregister()
	rm := collect(t, r)
	for _, tc := range []struct {
		metric, key string
		want        []string
	}{
		{"warmpool.connections.closed", "warmpool.close.reason", warmpool.CloseReasonNames()},
		{"warmpool.dial.failures", "warmpool.dial.failure.kind", warmpool.DialFailureKinds()},
	} {
		points := sum(t, mustFind(t, rm, tc.metric), true).DataPoints
		for _, v := range tc.want {
			found := false
			for _, p := range points {
				if got, ok := p.Attributes.Value(attribute.Key(tc.key)); ok && got.AsString() == v {
					found = true
				}
			}
			if !found {
				t.Errorf("%s has no point with %s=%q; points: %v", tc.metric, tc.key, v, pointAttrs(points))
			}
		}
	}
}
