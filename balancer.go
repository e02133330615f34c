package warmpool

import (
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// Balancers, as Config.Balancer names them.
const (
	balancerP2C        = "p2c"
	balancerRoundRobin = "round_robin"
	balancerFirst      = "first"
)

var balancerNames = []string{balancerP2C, balancerRoundRobin, balancerFirst}

const (
	pickP2C = iota
	pickRoundRobin
	pickFirst
)

func balancerPolicy(name string) int {
	switch name {
	case balancerRoundRobin:
		return pickRoundRobin
	case balancerFirst:
		return pickFirst
	}
	return pickP2C
}

// picker chooses the endpoint of each attempt among a name's endpoints, by
// the balancer's policy. Each endpointSet has its own (round_robin's
// counter is per name).
type picker struct {
	policy    int           // pickP2C, pickRoundRobin or pickFirst
	slowStart time.Duration // slow_start
	rr        atomic.Uint64 // round_robin's counter
}

// pick chooses the endpoint for one attempt among eps (at least one),
// avoiding prev, the endpoint of the attempt before, when another will do;
// allOut reports panic mode (every endpoint ejected), when the name wants
// resolving again.
// It takes no lock: eps is an immutable snapshot, the figures it compares
// are atomics, and the random numbers come from the runtime's per-thread
// generator (math/rand/v2). It costs tens of nanoseconds
// (BenchmarkPick).
//
// p2c, the power of two choices: of two endpoints drawn at random, the one
// with fewer requests in flight or waiting for a connection, ties going to
// the lower latency average. A slow endpoint holds its requests longer, so
// it has more in flight and is drawn less: its share falls with its speed,
// without a latency threshold to tune. round_robin takes them in turn,
// whatever their speed; first takes the first in the resolver's order, as
// net/http does.
//
// An ejected endpoint is skipped; when all are ejected (panic mode), all
// are used. An endpoint under slow_start is weighted by how far into it it
// is: p2c counts its load as (load+1)/weight, round_robin skips it with
// probability 1−weight.
func (pk *picker) pick(eps []*endpoint, prev *endpoint, now int64) (e *endpoint, allOut bool) {
	n := len(eps)
	if n == 1 {
		return eps[0], false
	}
	ok := func(e *endpoint) bool { return e != prev && e.pool.circuit.available(now) }
	var start int
	switch pk.policy {
	case pickFirst:
		for _, e := range eps {
			if ok(e) {
				return e, false
			}
		}
	case pickRoundRobin:
		start = int(pk.rr.Add(1) % uint64(n))
		for k := range n {
			e := eps[(start+k)%n]
			if ok(e) {
				if w := pk.weight(e, now); w < 1 && rand.Float64() >= w {
					continue
				}
				return e, false
			}
		}
	default:
		i := rand.IntN(n)
		j := rand.IntN(n - 1)
		if j >= i {
			j++
		}
		start = i
		a, b := eps[i], eps[j]
		switch oa, ob := ok(a), ok(b); {
		case oa && ob:
			return pk.lighter(a, b, now), false
		case oa:
			return a, false
		case ob:
			return b, false
		}
	}
	return fallback(eps, prev, now, start)
}

// fallback is pick's answer when its first choices are ejected or prev: any
// endpoint not ejected other than prev, then prev, then (panic mode: every
// endpoint ejected: allOut) any.
func fallback(eps []*endpoint, prev *endpoint, now int64, start int) (e *endpoint, allOut bool) {
	n := len(eps)
	for k := range n {
		if e := eps[(start+k)%n]; e != prev && e.pool.circuit.available(now) {
			return e, false
		}
	}
	if prev != nil && prev.pool.circuit.available(now) {
		return prev, false
	}
	return eps[start], true
}

// lighter returns the less loaded of a and b: fewer requests in flight or
// waiting, scaled by slow start, then the lower latency average.
func (pk *picker) lighter(a, b *endpoint, now int64) *endpoint {
	la := float64(a.pool.inflight.Load()+1) * pk.weight(b, now)
	lb := float64(b.pool.inflight.Load()+1) * pk.weight(a, now)
	switch {
	case la < lb:
		return a
	case lb < la:
		return b
	case b.pool.health.latency() < a.pool.health.latency():
		return b
	}
	return a
}

// weight is how far e is into slow_start, from just above 0 to 1.
func (pk *picker) weight(e *endpoint, now int64) float64 {
	ss := pk.slowStart
	if ss <= 0 || e.added == 0 {
		return 1
	}
	age := now - e.added
	if age >= int64(ss) {
		return 1
	}
	return max(float64(age)/float64(ss), 0.01)
}
