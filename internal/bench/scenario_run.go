package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warmpool/warmpool/internal/capserver"
	"github.com/warmpool/warmpool/internal/load"
)

// scenarioRun is one mode's run of a scenario: its servers, its client, and
// what it saw.
type scenarioRun struct {
	s        ScenarioSettings
	m        scenarioMode
	phases   []PhaseSpec
	srvs     []*capserver.Server
	slow     int // the slow endpoint's index; -1: none
	res      *fleetResolver
	url      string
	cl       *scenarioClient
	t        *callTally
	inFlight atomic.Int64 // calls under way
	summary  []load.Summary
	timeline []TimelinePoint
}

// scenarioFlushTimeout bounds the wait for the servers to count what they
// still hold once a run is over.
const scenarioFlushTimeout = 30 * time.Second

// servers is where a run's servers listened.
type servers struct {
	port, url string
	endpoints []string
	slow      string // the slow endpoint, if any
}

// runScenarioMode runs mode m of s against fresh servers, on port if it is
// free (the endpoints of slow-replica share one), and returns its result
// and where the servers listened.
func runScenarioMode(ctx context.Context, s ScenarioSettings, m scenarioMode, port string) (*ScenarioMode, servers, error) {
	r := &scenarioRun{s: s, m: m, phases: s.phases(), slow: -1, t: &callTally{callTimeout: s.callTimeout()}}
	if err := r.start(port); err != nil {
		return nil, servers{}, err
	}
	defer r.closeServers()
	r.t.t0 = time.Now()
	r.runPhases(ctx)
	elapsed := time.Since(r.t.t0)
	res := &ScenarioMode{Mode: m.name, Feature: m.feature, HedgeAfter: m.hedgeAfter, ElapsedS: round3(elapsed.Seconds()),
		ErrorSample: append([]string{}, r.t.samples...)}
	if wp := r.cl.wp; wp != nil {
		res.Pool = newPoolSummary(wp)
		res.HTTPClient = HTTPClientKeys(wp.Config())
		res.HedgesSent, res.HedgesWon = res.Pool.Hedges, res.Pool.HedgeWins
	}
	r.cl.close()
	fctx, cancel := context.WithTimeout(context.Background(), scenarioFlushTimeout)
	defer cancel()
	for _, srv := range r.srvs {
		srv.Flush(fctx) // a server still holding work after it is counted Unexecuted
	}
	r.results(res)
	where := servers{url: r.url}
	_, where.port, _ = net.SplitHostPort(r.srvs[0].Addr())
	for i, srv := range r.srvs {
		where.endpoints = append(where.endpoints, srv.Addr())
		if i == r.slow {
			where.slow = srv.Addr()
		}
	}
	return res, where, nil
}

// start starts the servers and the client of the run.
func (r *scenarioRun) start(port string) error {
	o := capserver.Options{Handlers: r.s.Handlers, ServiceTime: r.s.ServiceTime}
	if r.s.Scenario != ScenarioSlowReplica {
		o.Addr = "127.0.0.1:" + cmpOr(port, "0")
		srv, err := capserver.New(o)
		if err != nil && port != "" { // taken since: any port will do
			o.Addr = capserver.DefaultAddr
			srv, err = capserver.New(o)
		}
		if err != nil {
			return err
		}
		r.srvs, r.url = []*capserver.Server{srv}, srv.URL()+"/answer"
	} else if err := r.startReplicas(o, port); err != nil {
		return err
	}
	cl, err := r.m.client(r.s, r.res)
	if err != nil {
		r.closeServers()
		return err
	}
	r.cl = cl
	return nil
}

// startReplicas starts three endpoints on 127.0.0.1 … 127.0.0.3, one port,
// behind FleetName; the first answers a share of its requests late.
func (r *scenarioRun) startReplicas(o capserver.Options, port string) error {
	const replicas = 3
	var last error
	for try := range 5 { // the port may be taken on another address: try another
		if try > 0 {
			port = ""
		}
		r.closeServers()
		r.res, r.slow = &fleetResolver{}, 0
		for i := range replicas {
			oi := o
			oi.Addr = fmt.Sprintf("127.0.0.%d:%s", i+1, cmpOr(port, "0"))
			if i == r.slow {
				oi.SlowShare, oi.SlowDelay = r.s.SlowShare, r.s.SlowDelay
			}
			srv, err := capserver.New(oi)
			if last = err; err != nil {
				break
			}
			r.srvs = append(r.srvs, srv)
			_, port, _ = net.SplitHostPort(srv.Addr())
			r.res.add(fmt.Sprintf("127.0.0.%d", i+1))
		}
		if last == nil {
			r.url = "http://" + net.JoinHostPort(FleetName, port) + "/answer"
			return nil
		}
	}
	r.closeServers()
	return fmt.Errorf("starting %d servers on one port: %w", replicas, last)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (r *scenarioRun) closeServers() {
	for _, srv := range r.srvs {
		srv.Close()
	}
	r.srvs = nil
}

// runPhases runs the phases back to back, each its own open-model load
// started at its time, so that calls still under way at a phase's end
// overlap the next phase's first; it samples the timeline meanwhile.
func (r *scenarioRun) runPhases(ctx context.Context) {
	r.summary = make([]load.Summary, len(r.phases))
	var wg sync.WaitGroup
	for i, p := range r.phases {
		wg.Go(func() {
			start := time.Duration(p.StartS * float64(time.Second))
			t := time.NewTimer(time.Until(r.t.t0.Add(start)))
			defer t.Stop()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			r.event(p.Event)
			spec := load.Spec{Workers: phaseWorkers(r.s, p), Rate: p.RatePerS, Duration: time.Duration(p.DurationS * float64(time.Second)),
				Grace: r.s.callTimeout() + 2*time.Second, CallTimeout: r.s.callTimeout(), DropWhenFull: true}
			served := make([]int, spec.Workers)
			r.summary[i] = load.Run(ctx, spec, r.call(p.Name, served), r.t.observe(i, served))
		})
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	r.sample(done)
}

// phaseWorkers is a phase's cap on calls at once: enough that the schedule
// never finds every worker busy while calls last up to their deadline.
func phaseWorkers(s ScenarioSettings, p PhaseSpec) int {
	return int(p.RatePerS*s.callTimeout().Seconds()*2) + 64
}

// event does to the servers what a phase starts with.
func (r *scenarioRun) event(e string) {
	for _, srv := range r.srvs {
		switch e {
		case "hang":
			srv.SetHang(true)
		case "recover":
			srv.SetHang(false)
		}
	}
}

// call returns the load's call for phase tag: the scenario's request to the
// server, stamped with the caller's deadline and the phase; the endpoint
// that answered goes to served, by worker.
func (r *scenarioRun) call(tag string, served []int) load.Call {
	method := scenarioMethod(r.s.Scenario)
	return func(ctx context.Context, _ int64, w int) (int, error) {
		served[w] = -1
		r.inFlight.Add(1)
		defer r.inFlight.Add(-1)
		var body io.Reader
		if method == http.MethodPost {
			body = bytes.NewReader(DefaultBody)
		}
		var asked atomic.Bool
		tctx := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GetConn: func(string) { asked.Store(true) }})
		req, err := http.NewRequestWithContext(tctx, method, r.url, body)
		if err != nil {
			return 0, err
		}
		dl := time.Now().Add(r.s.RequestTimeout) // the caller gives up at its deadline or at request_timeout
		if d, ok := ctx.Deadline(); ok && d.Before(dl) {
			dl = d
		}
		req.Header.Set(capserver.DeadlineHeader, strconv.FormatInt(dl.UnixNano(), 10))
		req.Header.Set(capserver.TagHeader, tag)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := r.cl.do(req)
		if err != nil {
			return 0, notSent(ctx, err, asked.Load())
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		served[w] = r.endpoint(resp.Header.Get(capserver.ServedByHeader))
		return resp.StatusCode, err
	}
}

// endpoint is the index of the server at addr; -1 if none.
func (r *scenarioRun) endpoint(addr string) int {
	for i, srv := range r.srvs {
		if srv.Addr() == addr {
			return i
		}
	}
	return -1
}
