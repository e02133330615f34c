package warmpool

import (
	"context"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// A host name in a request URL stands for a set of endpoints: every address
// it resolves to, with the URL's port. net/http alone dials the first address
// that answers and then reuses that connection, so a warm pool pins a
// process to one replica. Here each endpoint has its own *http.Transport
// (cloned from the client's, so every setting, hook and limit is the same),
// whose dials go to the endpoint's IP address while the Host header and the
// TLS server name stay the URL's host name, and its own pool, so
// connections, max_connections, the dial gate, its health, circuit and
// concurrency limit, and Stats are per endpoint. Each attempt picks one
// endpoint (balancer.go) before the pool admits it.
//
// URLs with an IP literal, and with the system resolver names that resolve
// to a single address, take the client's own transport, exactly as before.

// routes maps the dialed "host:port" of each request URL to how attempts
// reach it. It owns resolution: the first request to a name resolves it on
// the request's goroutine; later resolutions run on goroutines the janitor
// starts and Close waits for.
type routes struct {
	c          *Client
	resolver   Resolver
	custom     bool // WithResolver: a single address is an endpoint too
	policy     int  // pickP2C, pickRoundRobin or pickFirst
	middleware []func(http.RoundTripper) http.RoundTripper

	m sync.Map // "host:port" → *route

	mu   sync.Mutex
	sets []*endpointSet // every name seen; guarded by mu

	wake   chan struct{} // a set wants resolving now; the janitor listens
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // background resolutions; Add and Wait on the janitor's goroutine only
}

// route is how attempts at one "host:port" go.
type route struct {
	key   string
	plain atomic.Pointer[pool] // the pool of key as the client's own transport dials it
	set   *endpointSet         // nil: an IP literal or a proxied URL, always plain
}

// plainPool is r's pool for the client's own transport. A balanced name
// gets one only if it goes that way, so Stats shows no empty entry for it.
func (r *route) plainPool(ps *poolSet) *pool {
	if p := r.plain.Load(); p != nil {
		return p
	}
	p := ps.get(r.key, "")
	r.plain.Store(p)
	return p
}

func newRoutes(c *Client, o options) *routes {
	rs := &routes{c: c, resolver: o.resolver, custom: o.resolver != nil, middleware: o.middleware,
		policy: balancerPolicy(c.cfg.Balancer), wake: make(chan struct{}, 1)}
	if rs.resolver == nil {
		rs.resolver = net.DefaultResolver
	}
	rs.ctx, rs.cancel = context.WithCancel(context.Background())
	return rs
}

// get returns the route of req's "host:port", key.
func (rs *routes) get(req *http.Request, key string) *route {
	if r, ok := rs.m.Load(key); ok {
		return r.(*route)
	}
	r := &route{key: key}
	host, port, err := net.SplitHostPort(key)
	if err == nil && net.ParseIP(host) == nil && !rs.proxied(req) {
		r.set = newEndpointSet(rs, host, port)
	} else {
		r.plainPool(rs.c.pools)
	}
	got, loaded := rs.m.LoadOrStore(key, r)
	if !loaded && r.set != nil {
		rs.mu.Lock()
		rs.sets = append(rs.sets, r.set)
		rs.mu.Unlock()
		// The first request resolves the name itself, within
		// connection_timeout; others to it wait for the answer.
		r.set.resolve(rs.ctx)
		close(r.set.ready)
	}
	return got.(*route)
}

// proxied reports whether a proxy carries req: then the proxy resolves.
func (rs *routes) proxied(req *http.Request) bool {
	if rs.c.tr.Proxy == nil {
		return false
	}
	u, err := rs.c.tr.Proxy(req)
	return u != nil || err != nil
}

// target returns the pool the attempt at req uses and its endpoint, nil for
// the client's own transport. An attempt after a failed one passes the
// endpoint of that one as prev: another is preferred.
func (rs *routes) target(req *http.Request, key string, prev *endpoint) (*pool, *endpoint) {
	r := rs.get(req, key)
	if r.set == nil {
		return r.plain.Load(), nil
	}
	l := r.set.list.Load()
	if l == nil {
		select {
		case <-r.set.ready:
			l = r.set.list.Load()
		case <-req.Context().Done():
			return r.plainPool(rs.c.pools), nil // net/http reports the context's error
		}
	}
	if len(l.eps) == 0 {
		return r.plainPool(rs.c.pools), nil
	}
	ep := r.set.pick(l.eps, prev)
	return ep.pool, ep
}

// endpointSet is the endpoints of one host name and port.
type endpointSet struct {
	rs    *routes
	name  string // host name
	port  string
	ready chan struct{}                // closed when the first resolution has ended
	list  atomic.Pointer[endpointList] // what requests pick from; replaced, never changed
	pk    picker                       // the balancer

	want      atomic.Bool  // a resolution is wanted now
	resolving atomic.Bool  // one is under way
	lastStart atomic.Int64 // unix nanos when the last one started
	next      time.Time    // janitor only: when the next periodic resolution is due

	mu       sync.Mutex           // guards what follows, and ejection decisions
	all      map[string]*endpoint // the active endpoints by address
	draining []*endpoint          // removed from the set, in-flight requests finishing
	addrs    []string             // the last good answer
}

func newEndpointSet(rs *routes, name, port string) *endpointSet {
	s := &endpointSet{rs: rs, name: name, port: port, ready: make(chan struct{}), all: map[string]*endpoint{}}
	s.pk.policy, s.pk.slowStart = rs.policy, rs.c.cfg.SlowStart
	return s
}

// pick chooses the endpoint of one attempt among eps, avoiding prev when
// another will do; in panic mode it asks for the name to be resolved again.
func (s *endpointSet) pick(eps []*endpoint, prev *endpoint) *endpoint {
	e, allOut := s.pk.pick(eps, prev, s.rs.c.now().UnixNano())
	if allOut {
		s.rs.wantResolve(s)
	}
	return e
}

// endpointList is an immutable snapshot of a set's active endpoints, in the
// order the resolver gave them. Empty: the client's own transport serves
// the name (one address under the system resolver, or no good answer yet).
type endpointList struct{ eps []*endpoint }

// endpoint is one address of a host name.
type endpoint struct {
	set   *endpointSet
	addr  string // "ip:port"
	pool  *pool
	tr    *http.Transport
	rt    http.RoundTripper // tr, wrapped in the client's middleware
	added int64             // unix nanos when it joined a set already serving, for slow_start; 0 if in the first answer

	draining atomic.Bool
	removed  atomic.Bool

	quietSweeps int // janitor only: sweeps that found it draining with nothing in flight
}

// resolve looks the name up and applies the answer.
func (s *endpointSet) resolve(ctx context.Context) {
	s.lastStart.Store(s.rs.c.now().UnixNano())
	ctx, cancel := context.WithTimeout(ctx, s.rs.c.cfg.ConnectionTimeout)
	addrs, err := s.rs.resolver.LookupHost(ctx, s.name)
	cancel()
	s.apply(addrs, err)
}

// apply makes addrs the set's endpoints. A failed or empty answer keeps the
// last good set; an endpoint gone from the answer drains.
func (s *endpointSet) apply(addrs []string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	first := s.list.Load() == nil
	uniq := make([]string, 0, len(addrs))
	for _, a := range addrs {
		if net.ParseIP(a) != nil && !slices.Contains(uniq, a) {
			uniq = append(uniq, a)
		}
	}
	if err != nil || len(uniq) == 0 {
		if first {
			s.list.Store(&endpointList{}) // net/http dials the name, and reports the error
		}
		s.rs.c.log.Debug("warmpool: resolving failed; keeping the last good set", "host", s.name, "err", err, "addresses", s.addrs)
		return
	}
	if slices.Equal(uniq, s.addrs) {
		return
	}
	s.addrs = uniq
	var eps []*endpoint
	if len(uniq) > 1 || s.rs.custom {
		now := s.rs.c.now().UnixNano()
		for _, ip := range uniq {
			addr := net.JoinHostPort(ip, s.port)
			ep := s.all[addr]
			if ep == nil {
				ep = s.revive(addr)
			}
			if ep == nil {
				ep = s.newEndpoint(addr)
				if !first {
					ep.added = now
				}
			}
			eps = append(eps, ep)
		}
	}
	all := make(map[string]*endpoint, len(eps))
	for _, ep := range eps {
		all[ep.addr] = ep
	}
	for addr, ep := range s.all {
		if all[addr] == nil {
			ep.draining.Store(true)
			s.draining = append(s.draining, ep)
			ep.tr.CloseIdleConnections()
		}
	}
	s.all = all
	s.list.Store(&endpointList{eps: eps})
	if !first {
		s.rs.c.log.Info("warmpool: endpoints changed", "host", s.name, "addresses", uniq)
	}
}

// revive takes addr back from the draining endpoints, if it is one.
func (s *endpointSet) revive(addr string) *endpoint {
	for i, ep := range s.draining {
		if ep.addr == addr {
			s.draining = slices.Delete(s.draining, i, i+1)
			ep.draining.Store(false)
			ep.quietSweeps = 0
			return ep
		}
	}
	return nil
}

// newEndpoint builds the endpoint for addr: its pool and its transport.
func (s *endpointSet) newEndpoint(addr string) *endpoint {
	c := s.rs.c
	d := c.dialer
	p := c.pools.get(addr, s.name)
	ep := &endpoint{set: s, addr: addr, pool: p}
	tr := c.tr.Clone()
	tr.Proxy = nil
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.dialTo(ctx, network, p, addr, "", false)
	}
	tr.DialTLSContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.dialTo(ctx, network, p, addr, s.name, true)
	}
	ep.tr = tr
	ep.rt = tr
	for _, mw := range s.rs.middleware {
		ep.rt = mw(ep.rt)
	}
	p.ep.Store(ep)
	return ep
}

// sweep closes the idle connections of draining endpoints and forgets
// those with nothing left in flight. It runs on the janitor's goroutine.
func (s *endpointSet) sweep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	keep := s.draining[:0]
	for _, ep := range s.draining {
		ep.tr.CloseIdleConnections()
		if ep.pool.inflight.Load() == 0 {
			// Twice in a row: a connection handed back just after the
			// last request ended is closed too.
			if ep.quietSweeps++; ep.quietSweeps >= 2 {
				ep.removed.Store(true)
				continue
			}
		} else {
			ep.quietSweeps = 0
		}
		keep = append(keep, ep)
	}
	clear(s.draining[len(keep):])
	s.draining = keep
}

// wantResolve asks for a resolution of s as soon as the janitor can start
// one: after a dial failure, or when every endpoint is ejected.
func (rs *routes) wantResolve(s *endpointSet) {
	if s.want.CompareAndSwap(false, true) {
		select {
		case rs.wake <- struct{}{}:
		default:
		}
	}
}

// minResolveGap spaces resolutions that failures ask for.
const minResolveGap = 100 * time.Millisecond

// tick runs on the janitor's goroutine each tick, and when woken: it starts
// the resolutions due and sweeps draining endpoints.
func (rs *routes) tick(now time.Time) {
	rs.mu.Lock()
	sets := slices.Clone(rs.sets)
	rs.mu.Unlock()
	iv := rs.c.cfg.ResolveInterval
	for _, s := range sets {
		if s.next.IsZero() {
			s.next = now.Add(iv)
		}
		due := iv > 0 && !now.Before(s.next)
		if (due || s.want.Load() && now.UnixNano()-s.lastStart.Load() >= int64(minResolveGap)) &&
			s.resolving.CompareAndSwap(false, true) {
			s.want.Store(false)
			s.next = now.Add(iv)
			rs.wg.Add(1)
			go func() {
				defer rs.wg.Done()
				defer s.resolving.Store(false)
				s.resolve(rs.ctx)
			}()
		}
		s.sweep()
	}
}

// stop ends the resolutions under way and waits for them. The janitor calls
// it when the client closes.
func (rs *routes) stop() {
	rs.cancel()
	rs.wg.Wait()
}

// hasOther reports whether an endpoint of s other than e can take an
// attempt now.
func (s *endpointSet) hasOther(e *endpoint, now time.Time) bool {
	ns := now.UnixNano()
	for _, o := range s.list.Load().eps {
		if o != e && o.pool.circuit.available(ns) {
			return true
		}
	}
	return false
}

// pools returns the pools an attempt at req may go to: the available
// endpoints of its name, or p alone.
func (rs *routes) pools(req *http.Request, p *pool) []*pool {
	r := rs.get(req, dialAddr(req.URL))
	if r.set == nil {
		return []*pool{p}
	}
	l := r.set.list.Load()
	if l == nil || len(l.eps) == 0 {
		return []*pool{p}
	}
	now := rs.c.now().UnixNano()
	out := make([]*pool, 0, len(l.eps))
	for _, e := range l.eps {
		if e.pool.circuit.available(now) {
			out = append(out, e.pool)
		}
	}
	if len(out) == 0 {
		out = append(out, p)
	}
	return out
}

// Endpoint states, as HostStats.EndpointState names them.
const (
	endpointActive   = "active"
	endpointEjected  = "ejected"
	endpointDraining = "draining"
	endpointRemoved  = "removed"
)

// state is e's state at now.
func (e *endpoint) state(now time.Time) string {
	switch {
	case e.removed.Load():
		return endpointRemoved
	case e.draining.Load():
		return endpointDraining
	case e.pool.circuit.ejected(now.UnixNano()):
		return endpointEjected
	}
	return endpointActive
}
