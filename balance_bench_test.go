package warmpool

import (
	"net"
	"testing"

	"github.com/warmpool/warmpool/internal/refserver"
)

// BenchmarkBalancedPost measures sequential POSTs through the balanced path
// (a name with 1 or 3 endpoints behind WithResolver) against the plain path
// (an IP literal URL, which takes the client's own transport as before).
// What the balanced path adds is the pick and the latency average: tens of
// nanoseconds on a request of tens of microseconds.
//
//	go test -run '^$' -bench BalancedPost -count 6 .
func BenchmarkBalancedPost(b *testing.B) {
	f := startFleet(b, 3, refserver.Options{})
	cfg := DefaultConfig()
	cfg.DisableHTTP2 = true
	for _, tc := range []struct {
		name string
		ips  []string
	}{
		{"path=plain", nil},
		{"path=balanced/endpoints=1", []string{"127.0.0.1"}},
		{"path=balanced/endpoints=3", []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			url := "http://" + f.addr(0) + "/answer"
			var opts []Option
			if tc.ips != nil {
				url = "http://" + net.JoinHostPort(fleetName, f.port) + "/answer"
				opts = append(opts, WithResolver(StaticResolver(map[string][]string{fleetName: tc.ips})))
			}
			c, err := New(cfg, opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			benchPosts(b, c.Do, url)
			if tc.ips != nil && len(c.Stats().Hosts) != len(tc.ips) {
				b.Fatalf("Stats.Hosts %v, want %d endpoints", c.Stats().HostNames(), len(tc.ips))
			}
		})
	}
}
