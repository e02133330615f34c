package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/load"
	"github.com/warmpool/warmpool/internal/refserver"
)

// A fleet run measures how clients spread load over replicas: N reference
// servers on 127.0.0.1 … 127.0.0.N, one port, behind one host name that only
// the benchmark's resolver knows. Linux routes all of 127/8 to the loopback
// interface. net/http dials the first address that answers and keeps
// reusing that connection; warmpool picks an endpoint per attempt. Events
// show how fast traffic moves: a backend added to the name (it listens from
// the start, on 127.0.0.(N+1), and joins the resolver's answer at the
// event), and a backend killed (closed abruptly, left in the answer, as a
// crashed replica is until DNS catches up).

// FleetName is the host name the fleet stands behind.
const FleetName = "backends.warmpool.test"

// Fleet modes: the bare clients, and warmpool with each balancer.
const (
	ModeWarmpoolRoundRobin = "warmpool-round_robin"
	ModeWarmpoolFirst      = "warmpool-first"
)

// FleetModes are the modes a fleet run knows, in run order; DefaultFleetModes
// run when none are given.
var (
	FleetModes        = []string{ModeDefault, ModeTuned, ModeWarmpool, ModeWarmpoolRoundRobin, ModeWarmpoolFirst}
	DefaultFleetModes = []string{ModeDefault, ModeTuned, ModeWarmpool}
)

// FleetResolveInterval is the resolve_interval of the warmpool modes of a
// fleet run, whatever the config says: the default 30s would see no added
// backend within a run.
const FleetResolveInterval = time.Second

// MaxBackends bounds FleetSettings.Backends (127.0.0.1 … 127.0.0.250).
const MaxBackends = 250

// FleetSettings describes a fleet run.
type FleetSettings struct {
	Backends    int           // servers behind the name at the start
	Modes       []string      // default DefaultFleetModes
	Concurrency int           // workers, closed model; default DefaultConcurrency
	Duration    time.Duration // per mode; default the last event + 5s, at least DefaultDuration
	AddAt       time.Duration // 0: no backend is added
	KillAt      time.Duration // 0: no backend is killed; the first backend is
	Body        []byte        // default DefaultBody
	Config      *warmpool.Config
	ServerDelay time.Duration
	Progress    io.Writer // nil: silent
}

// FleetReport is what a fleet run measured.
type FleetReport struct {
	Name        string            `json:"name"`               // host name:port
	ResolveS    float64           `json:"resolve_interval_s"` // the warmpool modes' resolve_interval
	Backends    []string          `json:"backends"`           // addresses, 127.0.0.1:port …; the added one last
	Concurrency int               `json:"concurrency"`
	DurationS   float64           `json:"duration_per_mode_s"`
	Events      []FleetEvent      `json:"events"`
	Modes       []FleetModeResult `json:"modes"`
}

// FleetEvent is a change to the fleet during each mode's run.
type FleetEvent struct {
	AtS     float64 `json:"at_s"`
	Kind    string  `json:"kind"` // "add" or "kill"
	Backend string  `json:"backend"`
}

// FleetModeResult is one mode's run.
type FleetModeResult struct {
	Mode     string  `json:"mode"`
	Balancer string  `json:"balancer,omitempty"` // warmpool's
	Requests int64   `json:"requests"`           // answered or failed
	Errors   int64   `json:"errors"`
	ReqPerS  float64 `json:"req_per_s"`
	// Requests is what each backend served (server-side counts), in the
	// order of FleetReport.Backends; Share the same as shares of their sum.
	Served []int64   `json:"served"`
	Share  []float64 `json:"share"`
	// Phases splits the run at the events: each backend's share in each.
	Phases []FleetPhase `json:"phases"`
	// NewBackendShareAfterS is how long after the add event the new backend
	// first took at least 80 % of an even share over a 300 ms window; -1:
	// never within the run.
	NewBackendShareAfterS float64 `json:"new_backend_share_after_s,omitempty"`
	// ErrorsAfterKill counts calls that failed from the kill event on, and
	// ErrorsStoppedAfterS is when the last of them failed, after the event.
	ErrorsAfterKill     int64    `json:"errors_after_kill"`
	ErrorsStoppedAfterS float64  `json:"errors_stopped_after_s"`
	ErrorSamples        []string `json:"error_samples,omitempty"`
}

// FleetPhase is the part of a run between two events.
type FleetPhase struct {
	FromS float64   `json:"from_s"`
	ToS   float64   `json:"to_s"`
	Share []float64 `json:"share"`
}

// normalize fills in the defaults and checks s.
func (s FleetSettings) normalize() (FleetSettings, error) {
	if s.Backends < 1 || s.Backends > MaxBackends-1 {
		return s, fmt.Errorf("backends %d: want 1 to %d", s.Backends, MaxBackends-1)
	}
	if len(s.Modes) == 0 {
		s.Modes = DefaultFleetModes
	}
	for _, m := range s.Modes {
		if !slices.Contains(FleetModes, m) {
			return s, fmt.Errorf("mode %q: with backends, want some of %v", m, FleetModes)
		}
	}
	s.Modes = slices.DeleteFunc(slices.Clone(FleetModes), func(m string) bool { return !slices.Contains(s.Modes, m) })
	if s.Concurrency == 0 {
		s.Concurrency = DefaultConcurrency
	}
	if s.AddAt < 0 || s.KillAt < 0 {
		return s, errors.New("event times must not be negative")
	}
	if s.Duration == 0 {
		s.Duration = max(DefaultDuration, max(s.AddAt, s.KillAt)+5*time.Second)
	}
	if s.AddAt >= s.Duration || s.KillAt >= s.Duration {
		return s, fmt.Errorf("events must fall within the duration (%s)", s.Duration)
	}
	if len(s.Body) == 0 {
		s.Body = DefaultBody
	}
	return s, nil
}

// RunFleet runs each mode of s against a fresh fleet, with the same events.
func RunFleet(ctx context.Context, s FleetSettings) (*FleetReport, error) {
	s, err := s.normalize()
	if err != nil {
		return nil, err
	}
	rep := &FleetReport{Concurrency: s.Concurrency, DurationS: s.Duration.Seconds(), ResolveS: FleetResolveInterval.Seconds(),
		Modes: []FleetModeResult{}}
	port := ""
	for _, mode := range s.Modes {
		if s.Progress != nil {
			fmt.Fprintf(s.Progress, "warmpool bench: %s over %d backends for %s\n", mode, s.Backends, s.Duration)
		}
		f, err := startBenchFleet(s, port)
		if err != nil {
			return nil, err
		}
		port = f.port // the next mode's fleet tries the same port, for one name in the report
		res, err := f.run(ctx, s, mode)
		f.close()
		if err != nil {
			return nil, fmt.Errorf("mode %s: %w", mode, err)
		}
		rep.Name, rep.Backends, rep.Events = f.name(), f.addrs(), f.events(s)
		rep.Modes = append(rep.Modes, *res)
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
	}
	return rep, nil
}

// benchFleet is the servers of one mode's run.
type benchFleet struct {
	port  string
	srvs  []*refserver.Server // Backends, plus the one to add if any
	res   fleetResolver
	added bool
}

// startBenchFleet starts the servers of one run on port, or on a free one
// if port is "" or taken.
func startBenchFleet(s FleetSettings, port string) (*benchFleet, error) {
	n := s.Backends
	if s.AddAt > 0 {
		n++
	}
	var last error
	for try := range 5 { // the port may be taken on another address: try another
		f := &benchFleet{}
		if try == 0 {
			f.port = port
		}
		if last = f.start(n, s.ServerDelay); last == nil {
			for i := range s.Backends {
				f.res.add(f.ip(i))
			}
			return f, nil
		}
		f.close()
	}
	return nil, fmt.Errorf("starting %d servers on one port: %w", n, last)
}

func (f *benchFleet) start(n int, delay time.Duration) error {
	for i := range n {
		addr := f.ip(i) + ":0"
		if f.port != "" {
			addr = net.JoinHostPort(f.ip(i), f.port)
		}
		srv, err := refserver.New(refserver.Options{Addr: addr, Delay: delay})
		if err != nil {
			return err
		}
		f.srvs = append(f.srvs, srv)
		_, f.port, _ = net.SplitHostPort(srv.Addr())
	}
	return nil
}

func (f *benchFleet) ip(i int) string { return fmt.Sprintf("127.0.0.%d", i+1) }
func (f *benchFleet) name() string    { return net.JoinHostPort(FleetName, f.port) }

func (f *benchFleet) addrs() []string {
	out := make([]string, len(f.srvs))
	for i, s := range f.srvs {
		out[i] = s.Addr()
	}
	return out
}

func (f *benchFleet) events(s FleetSettings) []FleetEvent {
	ev := []FleetEvent{}
	if s.AddAt > 0 {
		ev = append(ev, FleetEvent{AtS: s.AddAt.Seconds(), Kind: "add", Backend: f.srvs[len(f.srvs)-1].Addr()})
	}
	if s.KillAt > 0 {
		ev = append(ev, FleetEvent{AtS: s.KillAt.Seconds(), Kind: "kill", Backend: f.srvs[0].Addr()})
	}
	slices.SortFunc(ev, func(a, b FleetEvent) int { return int(a.AtS*1e9 - b.AtS*1e9) })
	return ev
}

func (f *benchFleet) close() {
	for _, s := range f.srvs {
		s.Close()
	}
}

// served is what each server has served so far.
func (f *benchFleet) served() []int64 {
	out := make([]int64, len(f.srvs))
	for i, s := range f.srvs {
		out[i] = s.Stats().Requests
	}
	return out
}

// fleetResolver answers FleetName with the fleet's addresses now.
type fleetResolver struct {
	mu    sync.Mutex
	addrs []string
}

func (r *fleetResolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if host != FleetName {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return slices.Clone(r.addrs), nil
}

func (r *fleetResolver) add(ip string) {
	r.mu.Lock()
	r.addrs = append(r.addrs, ip)
	r.mu.Unlock()
}

// dial is what net/http's dialer does with a name: try its addresses in
// order, and keep the first connection that opens.
func (r *fleetResolver) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ips, err := r.LookupHost(ctx, host)
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: bareDialTimeout}
	var first error
	for _, ip := range ips {
		c, err := d.DialContext(ctx, network, net.JoinHostPort(ip, port))
		if err == nil {
			return c, nil
		}
		first = cmpErr(first, err)
	}
	return nil, first
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// fleetClient builds mode's client for f.
func (f *benchFleet) client(s FleetSettings, mode string) (func(*http.Request) (*http.Response, error), func(), string, error) {
	switch mode {
	case ModeDefault, ModeTuned:
		tr := defaultTransport(nil)
		if mode == ModeTuned {
			tr = tunedTransport(nil, s.Concurrency+TunedHeadroom)
		}
		tr.Proxy = nil
		tr.DialContext = f.res.dial
		hc := &http.Client{Transport: tr}
		return hc.Do, tr.CloseIdleConnections, "", nil
	}
	cfg := warmpool.DefaultConfig()
	if s.Config != nil {
		cfg = *s.Config
	}
	cfg.DisableHTTP2, cfg.H2C = true, false
	// A run lasts seconds: resolve as often as a DNS TTL of FleetResolveInterval.
	cfg.ResolveInterval = FleetResolveInterval
	switch mode {
	case ModeWarmpoolRoundRobin:
		cfg.Balancer = "round_robin"
	case ModeWarmpoolFirst:
		cfg.Balancer = "first"
	}
	c, err := warmpool.New(cfg, warmpool.WithResolver(&f.res))
	if err != nil {
		return nil, nil, "", err
	}
	return c.Do, func() { c.Close() }, c.Config().Balancer, nil
}

// fleetSample is the counts at one moment of a run.
type fleetSample struct {
	at     time.Duration
	served []int64
}

// fleetTally counts the calls of a fleet run; errors are rare, so one lock.
type fleetTally struct {
	start   time.Time
	killAt  atomic.Int64 // since start; 0 until the kill event
	calls   atomic.Int64
	mu      sync.Mutex
	errs    int64
	killed  int64         // errors from the kill event on
	lastErr time.Duration // since start, the last of those
	samples []string      // the first distinct error messages
}

// record counts one call; a call cut short by the end of the run is not
// counted.
func (t *fleetTally) record(r load.Record) {
	if r.Cut {
		return
	}
	t.calls.Add(1)
	if r.Err == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.errs++
	if t.killAt.Load() > 0 {
		t.killed++
		t.lastErr = max(t.lastErr, r.End.Sub(t.start))
	}
	if len(t.samples) < 3 && !slices.Contains(t.samples, r.Err.Error()) {
		t.samples = append(t.samples, r.Err.Error())
	}
}

// run loads f with mode's client for s.Duration, through the tooling's one
// load loop (internal/load), firing the events.
func (f *benchFleet) run(ctx context.Context, s FleetSettings, mode string) (*FleetModeResult, error) {
	do, closeClient, balancer, err := f.client(s, mode)
	if err != nil {
		return nil, err
	}
	defer closeClient()
	t := &fleetTally{start: time.Now()}
	done := make(chan load.Summary, 1)
	go func() {
		done <- load.Run(ctx, load.Spec{Workers: s.Concurrency, Duration: s.Duration},
			func(ctx context.Context, _ int64, _ int) (int, error) { return 0, fleetCall(ctx, do, f.name(), s.Body) },
			t.record)
	}()
	samples := f.watch(s, t, done)
	elapsed := time.Since(t.start)
	samples = append(samples, fleetSample{elapsed, f.served()})

	last := samples[len(samples)-1].served
	calls := t.calls.Load()
	res := &FleetModeResult{
		Mode: mode, Balancer: balancer, Requests: calls, Errors: t.errs,
		ReqPerS: float64(calls) / elapsed.Seconds(),
		Served:  last, Share: shareOf(last), ErrorSamples: t.samples,
		ErrorsAfterKill: t.killed,
	}
	if killAt := time.Duration(t.killAt.Load()); t.lastErr > 0 && killAt > 0 {
		res.ErrorsStoppedAfterS = round3((t.lastErr - killAt).Seconds())
	}
	res.Phases = fleetPhases(samples, s)
	if s.AddAt > 0 {
		res.NewBackendShareAfterS = timeToShare(samples, s, len(f.srvs)-1)
	}
	return res, nil
}

// watch fires the events of s when due and samples what each server has
// served every 100ms, until the load is done.
func (f *benchFleet) watch(s FleetSettings, t *fleetTally, done <-chan load.Summary) []fleetSample {
	samples := []fleetSample{{0, f.served()}}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return samples
		case <-tick.C:
			now := time.Since(t.start)
			if s.AddAt > 0 && !f.added && now >= s.AddAt {
				f.res.add(f.ip(len(f.srvs) - 1))
				f.added = true
			}
			if s.KillAt > 0 && t.killAt.Load() == 0 && now >= s.KillAt {
				t.killAt.Store(int64(now))
				f.srvs[0].Close()
			}
			samples = append(samples, fleetSample{now, f.served()})
		}
	}
}

// fleetCall POSTs body to the fleet and reads the answer.
func fleetCall(ctx context.Context, do func(*http.Request) (*http.Response, error), name string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+name+"/answer", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header["Content-Type"] = []string{"application/json"}
	resp, err := do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return err
}
