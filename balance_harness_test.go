package warmpool

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/refserver"
)

// fleetName is the host name the fleet's servers stand behind.
const fleetName = "replicas.test"

// fleet is n reference servers on 127.0.0.1 … 127.0.0.n, one port, behind
// fleetName in a resolver the test changes. Linux routes all of 127/8 to
// the loopback interface, so no setup is needed.
type fleet struct {
	t    testing.TB
	opts refserver.Options
	port string
	res  *fakeResolver

	mu   sync.Mutex
	srvs []*refserver.Server // by index: 127.0.0.(i+1); nil while down
	base []int64             // requests served by earlier incarnations of each
}

// startFleet starts n servers and puts all of them in the resolver.
func startFleet(t testing.TB, n int, opts refserver.Options) *fleet {
	t.Helper()
	for try := 0; ; try++ {
		f := &fleet{t: t, opts: opts, res: &fakeResolver{}, srvs: make([]*refserver.Server, n), base: make([]int64, n)}
		err := f.startAll()
		if err == nil {
			t.Cleanup(f.closeAll)
			for i := range n {
				f.res.add(f.ip(i))
			}
			return f
		}
		f.closeAll()
		if try == 5 {
			t.Fatalf("starting %d servers on one port: %v", n, err)
		}
	}
}

func (f *fleet) startAll() error {
	for i := range f.srvs {
		if err := f.tryStart(i); err != nil {
			return err
		}
	}
	return nil
}

func (f *fleet) ip(i int) string { return fmt.Sprintf("127.0.0.%d", i+1) }

// addr is server i's address, "127.0.0.(i+1):port".
func (f *fleet) addr(i int) string { return net.JoinHostPort(f.ip(i), f.port) }

func (f *fleet) tryStart(i int) error {
	o := f.opts
	o.Addr = f.ip(i) + ":0"
	if f.port != "" {
		o.Addr = f.addr(i)
	}
	srv, err := refserver.New(o)
	if err != nil {
		return err
	}
	if f.port == "" {
		_, f.port, _ = net.SplitHostPort(srv.Addr())
	}
	f.mu.Lock()
	f.srvs[i] = srv
	f.mu.Unlock()
	return nil
}

// start (re)starts server i on its address.
func (f *fleet) start(i int) {
	f.t.Helper()
	if err := f.tryStart(i); err != nil {
		f.t.Fatalf("restarting server %d: %v", i, err)
	}
}

// srv is server i, nil while down.
func (f *fleet) srv(i int) *refserver.Server {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.srvs[i]
}

// stop takes server i down with stop (Close or a graceful Shutdown).
func (f *fleet) stop(i int, how func(*refserver.Server)) {
	f.mu.Lock()
	srv := f.srvs[i]
	f.mu.Unlock()
	how(srv)
	f.mu.Lock()
	f.base[i] += srv.Stats().Requests
	f.srvs[i] = nil
	f.mu.Unlock()
}

func (f *fleet) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.srvs {
		if s != nil {
			s.Close()
		}
	}
}

// requests is what each server served, restarts included.
func (f *fleet) requests() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := slices.Clone(f.base)
	for i, s := range f.srvs {
		if s != nil {
			out[i] += s.Stats().Requests
		}
	}
	return out
}

// url is the fleet's URL for path, by name.
func (f *fleet) url(path string) string {
	scheme := "http"
	if strings.HasPrefix(f.opts.Proto, "tls") {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(fleetName, f.port) + path
}

// client builds a client on the fleet's resolver.
func (f *fleet) client(cfg Config, opts ...Option) *Client {
	f.t.Helper()
	opts = append([]Option{WithResolver(f.res)}, opts...)
	if tc := f.srv(0).ClientTLSConfig(); tc != nil {
		opts = append([]Option{WithTLSConfig(tc)}, opts...)
	}
	c, err := New(cfg, opts...)
	if err != nil {
		f.t.Fatalf("New: %v", err)
	}
	f.t.Cleanup(func() { c.Close() })
	return c
}

// fakeResolver answers fleetName with the addresses the test sets.
type fakeResolver struct {
	mu      sync.Mutex
	addrs   []string
	lookups atomic.Int64
}

func (r *fakeResolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	r.lookups.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if host != fleetName || len(r.addrs) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return slices.Clone(r.addrs), nil
}

func (r *fakeResolver) add(ip string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addrs = append(r.addrs, ip)
}

func (r *fakeResolver) remove(ip string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addrs = slices.DeleteFunc(r.addrs, func(a string) bool { return a == ip })
}

// shares turns counts into shares of their sum.
func shares(n []int64) []float64 {
	var sum int64
	for _, v := range n {
		sum += v
	}
	out := make([]float64, len(n))
	for i, v := range n {
		if sum > 0 {
			out[i] = float64(v) / float64(sum)
		}
	}
	return out
}

// diff is b − a, element by element.
func diff(a, b []int64) []int64 {
	out := make([]int64, len(b))
	for i := range b {
		out[i] = b[i]
		if i < len(a) {
			out[i] -= a[i]
		}
	}
	return out
}

// quietConfig is DefaultConfig with short timeouts for the balancing tests.
func quietConfig() Config {
	c := DefaultConfig()
	c.ConnectionTimeout = 2 * time.Second
	c.RequestTimeout = 5 * time.Second
	return c
}
