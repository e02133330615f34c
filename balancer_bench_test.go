package warmpool

import (
	"fmt"
	"testing"
)

// BenchmarkPick measures one pick among endpoints, the only work the
// balancer adds to an attempt on a balanced name. It must stay well under
// 1 µs and take no lock: run in parallel, it must not slow down.
//
//	go test -run '^$' -bench Pick -count 6 .
func BenchmarkPick(b *testing.B) {
	for _, mode := range balancerNames {
		for _, n := range []int{3, 10} {
			c, err := New(Config{Balancer: mode})
			if err != nil {
				b.Fatal(err)
			}
			s := newEndpointSet(c.routes, fleetName, "80")
			eps := make([]*endpoint, n)
			for i := range eps {
				eps[i] = &endpoint{set: s, pool: c.pools.get(fmt.Sprint(i), fleetName)}
				eps[i].pool.inflight.Store(int64(i % 3))
			}
			for _, parallel := range []bool{false, true} {
				name := fmt.Sprintf("balancer=%s/endpoints=%d/sequential", mode, n)
				if parallel {
					name = fmt.Sprintf("balancer=%s/endpoints=%d/parallel", mode, n)
				}
				b.Run(name, func(b *testing.B) {
					b.ReportAllocs()
					if parallel {
						b.RunParallel(func(pb *testing.PB) {
							for pb.Next() {
								s.pick(eps, nil)
							}
						})
						return
					}
					prev := eps[0]
					for b.Loop() {
						prev = s.pick(eps, prev)
					}
				})
			}
			c.Close()
		}
	}
}
