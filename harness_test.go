package warmpool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/faultproxy"
	"github.com/warmpool/warmpool/internal/refserver"
)

// startServer runs a reference server for the test and closes it after.
func startServer(t testing.TB, opts refserver.Options) *refserver.Server {
	t.Helper()
	srv, err := refserver.New(opts)
	if err != nil {
		t.Fatalf("refserver.New: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// newClient builds a client trusting srv and closes it after the test.
func newClient(t testing.TB, srv *refserver.Server, cfg Config, opts ...Option) *Client {
	t.Helper()
	if tc := srv.ClientTLSConfig(); tc != nil {
		opts = append([]Option{WithTLSConfig(tc)}, opts...)
	}
	c, err := New(cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitFor polls cond every 5ms until it holds or the timeout passes. Tests
// poll only for a state that shows nowhere but in counts read from outside
// (a server's Stats, the client's Stats after a close that net/http or the
// janitor makes on its own goroutine), where no hook or channel says when it
// changes; what names the state waited for. Waits on time alone run in
// synctest bubbles instead.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// answer is the reference server's /answer reply.
type answer struct {
	Answer string `json:"answer"`
}

var question = map[string]string{"question": "what does pooling buy?"}

// maxLoad bounds the calls of one load, so that a test whose stop
// condition never comes still ends.
const maxLoad = 100_000

// errStop, returned by a load's fn, ends the load: no call starts after it.
var errStop = errors.New("load stopped")

// load is the tests' one load generator. It makes n calls of fn, i from 0 to
// n−1, from concurrency goroutines; goroutine w makes calls w,
// w+concurrency, w+2·concurrency, … one after the other, so i%concurrency
// names the worker of call i. With concurrency n, all n calls run at once;
// the goroutines start as they are made, as the tests' own loops did. A
// call that returns errStop ends the load: every call that was not made
// then holds errStop too, so countErrs(errs, errStop) tells the calls made
// from those that were not. It returns the calls' errors by i.
func load(t testing.TB, n, concurrency int, fn func(i int) error) []error {
	t.Helper()
	if n < 0 || n > maxLoad || concurrency < 1 {
		t.Fatalf("load(%d calls, %d goroutines): want 0..%d calls and at least one goroutine", n, concurrency, maxLoad)
	}
	return runLoad(n, concurrency, fn)
}

// runLoad is load for callers without a testing.TB (runPosts, parallel).
func runLoad(n, concurrency int, fn func(i int) error) []error {
	errs := make([]error, n)
	var (
		wg      sync.WaitGroup
		stopped atomic.Bool
	)
	for w := range min(concurrency, n) {
		wg.Go(func() {
			for i := w; i < n; i += concurrency {
				if stopped.Load() {
					errs[i] = errStop
					continue
				}
				if errs[i] = fn(i); errs[i] == errStop {
					stopped.Store(true)
				}
			}
		})
	}
	wg.Wait()
	return errs
}

// parallel is load with one call per goroutine, kept for
// TestBalanceSpreadsLoad, whose body is edited elsewhere; new tests call load.
func parallel(n int, fn func(i int) error) []error { return runLoad(n, max(n, 1), fn) }

// until returns a load fn that calls fn until d has passed or stop is closed
// (nil: never), then returns errStop.
func until(d time.Duration, stop <-chan struct{}, fn func(i int) error) func(i int) error {
	deadline := time.Now().Add(d)
	return func(i int) error {
		select {
		case <-stop:
			return errStop
		default:
		}
		if time.Now().After(deadline) {
			return errStop
		}
		return fn(i)
	}
}

// background runs a load of workers goroutines calling fn, on its own
// goroutine, until stop is called (or the test ends, or maxLoad calls were
// made); stop returns the calls' errors by index, errStop for those not
// made. failures picks the failed calls out of them.
func background(t testing.TB, workers int, fn func(i int) error) (stop func() []error) {
	t.Helper()
	quit := make(chan struct{})
	done := make(chan []error, 1)
	go func() { done <- runLoad(maxLoad, workers, until(time.Hour, quit, fn)) }()
	var once sync.Once
	var errs []error
	stop = func() []error {
		once.Do(func() {
			close(quit)
			errs = <-done
		})
		return errs
	}
	t.Cleanup(func() { stop() })
	return stop
}

// failures returns the errors of the failed calls among errs whose index
// keep accepts (nil: all), leaving out the calls not made (errStop).
func failures(errs []error, keep func(i int) bool) []error {
	var out []error
	for i, err := range errs {
		if err != nil && err != errStop && (keep == nil || keep(i)) {
			out = append(out, err)
		}
	}
	return out
}

func countErrs(errs []error, target error) (ok, matched, other int, firstOther error) {
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, target):
			matched++
		default:
			other++
			if firstOther == nil {
				firstOther = err
			}
		}
	}
	return
}

func post(c *Client, url string) error {
	var a answer
	return c.PostJSON(context.Background(), url, question, &a)
}

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// protos are the server/client pairs every pooling test runs in.
var protos = []struct {
	name   string
	server string
	http2  bool
}{
	{"http1", "http", false},
	{"tls-http1", "tls-h1", false},
	{"tls-http2", "tls", true},
}

// faultProxy starts a fault proxy in front of upstream for the test.
func faultProxy(t testing.TB, upstream string) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.New(upstream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("fault proxy: %v", err)
		}
	})
	return p
}

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

// warm waits until every backend up and in the resolver has served 50
// requests: the test's load runs on all of them. It polls: the servers'
// counts are the only sign.
func (f *fleet) warm(t testing.TB) {
	t.Helper()
	f.res.mu.Lock()
	ips := slices.Clone(f.res.addrs)
	f.res.mu.Unlock()
	waitFor(t, fmt.Sprintf("the load to reach the %d backends in the resolver", len(ips)), 3*time.Second, func() bool {
		n := f.requests()
		for i := range n {
			if slices.Contains(ips, f.ip(i)) && n[i] < 50 {
				return false
			}
		}
		return true
	})
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

// quietConfig is DefaultConfig with short timeouts for the balancing tests.
func quietConfig() Config {
	c := DefaultConfig()
	c.ConnectionTimeout = 2 * time.Second
	c.RequestTimeout = 5 * time.Second
	return c
}

// getURL sends a GET through c.Do and reads the whole body.
func getURL(c *Client, url string) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}
