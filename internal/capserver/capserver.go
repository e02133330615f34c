// Package capserver is a backend with a fixed capacity, for the bench's
// graceful-degradation scenarios (warmpool bench -scenario): Handlers slots
// each executing one request in ServiceTime (16 × 10 ms: 1,600 requests per
// second at most), and an unbounded queue in arrival order in front of
// them, as a pool of uvicorn workers behind its accept queue.
//
// Like uvicorn's workers it does not notice callers that gave up: a request
// queued or executing is executed in full whether or not its client is still
// there. Only the answer is not delivered: the handler stops waiting for it
// once the client has gone, which frees the connection as uvicorn frees a
// disconnected transport, while the work stays queued. A caller states its
// deadline in X-Bench-Deadline (unix nanoseconds); an execution that starts
// after it is counted as wasted: capacity spent on a caller that had already
// given up.
//
// Faults, switched at run time or set up front: SetHang makes the server
// read requests and answer none until switched back, when it executes the
// held ones in arrival order; Options.SlowShare makes a share of the
// requests (by arrival index, evenly spread) take SlowDelay instead of
// ServiceTime.
//
// Every count (Stats) is the server's own. It listens on loopback only.
package capserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warmpool/warmpool/internal/loopback"
	"github.com/warmpool/warmpool/internal/wait"
)

// Headers the scenarios speak.
const (
	// DeadlineHeader carries the caller's absolute deadline, unix nanoseconds.
	DeadlineHeader = "X-Bench-Deadline"
	// TagHeader names the counts a request adds to (Stats.ByTag), such as
	// the scenario's phase.
	TagHeader = "X-Bench-Tag"
	// ServedByHeader, on an answer, is the address of the server that
	// executed it.
	ServedByHeader = "X-Bench-Server"
)

// Defaults for the zero values of Options.
const (
	DefaultAddr        = "127.0.0.1:0"
	DefaultHandlers    = 16
	DefaultServiceTime = 10 * time.Millisecond
)

// answer is every request's answer body.
var answer = []byte(`{"answer":"42"}` + "\n")

// Options configures a Server; the zero value is 16 slots of 10 ms on a
// free loopback port.
type Options struct {
	Addr        string        // listen address, loopback only; default 127.0.0.1:0
	Handlers    int           // slots executing at once; default 16
	ServiceTime time.Duration // one execution; default 10ms
	// SlowShare, from 0 to 1, is the share of requests whose execution
	// takes SlowDelay instead: request i (in arrival order, from 0) is slow
	// when ⌊(i+1)·share⌋ > ⌊i·share⌋, so 0.1 makes every tenth slow.
	SlowShare float64
	SlowDelay time.Duration
}

func (o Options) withDefaults() (Options, error) {
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	if o.Handlers == 0 {
		o.Handlers = DefaultHandlers
	}
	if o.ServiceTime == 0 {
		o.ServiceTime = DefaultServiceTime
	}
	switch ok, err := loopback.Addr(o.Addr); {
	case err != nil:
		return o, fmt.Errorf("capserver: address %q: %w", o.Addr, err)
	case !ok:
		return o, fmt.Errorf("capserver: address %q: loopback only", o.Addr)
	case o.Handlers < 0 || o.ServiceTime < 0 || o.SlowDelay < 0:
		return o, errors.New("capserver: handlers, service time and slow delay must not be negative")
	case o.SlowShare < 0 || o.SlowShare > 1 || math.IsNaN(o.SlowShare):
		return o, fmt.Errorf("capserver: slow share %v: want 0 to 1", o.SlowShare)
	}
	return o, nil
}

// Server is a running capacity server.
type Server struct {
	opts Options
	addr string
	srv  *http.Server
	q    *fifo
	c    counters

	flushing atomic.Bool   // execute what is queued at once
	done     chan struct{} // closed by Close
	mu       sync.Mutex    // guards closed and the Add of handlers
	closed   bool
	handlers sync.WaitGroup // handler calls under way
	workers  sync.WaitGroup
	conns    atomic.Int64  // connections open
	served   chan struct{} // closed when Serve returned
}

// New starts a server on o.Addr.
func New(o Options) (*Server, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("capserver: %w", err)
	}
	s := &Server{opts: o, addr: ln.Addr().String(), q: newFIFO(), done: make(chan struct{}), served: make(chan struct{})}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serveHTTP), ReadHeaderTimeout: 10 * time.Second, ConnState: s.connState}
	for range o.Handlers {
		s.workers.Go(s.work)
	}
	go func() {
		defer close(s.served)
		s.srv.Serve(ln) // returns http.ErrServerClosed on Close
	}()
	return s, nil
}

// Addr is the address the server listens on, "127.0.0.1:port".
func (s *Server) Addr() string { return s.addr }

// URL is the server's base URL, "http://127.0.0.1:port".
func (s *Server) URL() string { return "http://" + s.addr }

// Stats returns the server's counts now.
func (s *Server) Stats() Stats {
	st := s.c.snapshot()
	st.Hanging = s.hanging()
	return st
}

func (s *Server) hanging() bool {
	s.q.mu.Lock()
	defer s.q.mu.Unlock()
	return s.q.paused
}

// SetHang makes the server hang (on: it reads requests and answers none)
// or recover (off: it executes the requests it held, in arrival order, then
// the new ones). Executions under way when it starts to hang finish.
func (s *Server) SetHang(on bool) { s.q.setPaused(on) }

// Flush executes every queued request at once (no service time), counting
// each as executed, and as wasted if its caller's deadline has passed: what
// the server would have counted on getting to it, without the wait. It ends
// a hang and returns when nothing is queued or executing, or when ctx ends.
// Call it once no caller waits any more.
func (s *Server) Flush(ctx context.Context) error {
	s.flushing.Store(true)
	s.q.setPaused(false)
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for s.c.queued.Load() > 0 || s.c.executing.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// serveHTTP reads the request, queues its work and waits for it; if the
// client goes first it stops waiting (the work stays queued).
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.enter() {
		http.Error(w, "closing", http.StatusServiceUnavailable)
		return
	}
	defer s.handlers.Done()
	io.Copy(io.Discard, r.Body)
	j := &job{tag: r.Header.Get(TagHeader), done: make(chan struct{})}
	if ns, err := strconv.ParseInt(r.Header.Get(DeadlineHeader), 10, 64); err == nil {
		j.deadline = time.Unix(0, ns)
	}
	j.index = s.c.arrived(j.tag)
	if !s.q.push(j) {
		s.c.queued.Add(-1)
		s.c.unexecuted.Add(1)
		http.Error(w, "closing", http.StatusServiceUnavailable)
		return
	}
	select {
	case <-j.done:
		w.Header().Set(ServedByHeader, s.addr)
		w.Header().Set("Content-Type", "application/json")
		w.Write(answer)
	case <-r.Context().Done():
		s.c.clientGone.Add(1) // the work runs all the same
	case <-s.done:
	}
}

// enter counts a handler call in, unless the server is closing.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.handlers.Add(1)
	return true
}

// work is one handler slot: it executes queued jobs one at a time.
func (s *Server) work() {
	for {
		j, ok := s.q.pop()
		if !ok {
			return
		}
		s.execute(j)
	}
}

// execute runs j in its slot: ServiceTime, or SlowDelay for a slow one.
func (s *Server) execute(j *job) {
	start := time.Now()
	s.c.started(j.tag, !j.deadline.IsZero() && start.After(j.deadline))
	d, slow := s.opts.ServiceTime, s.slow(j.index)
	if slow {
		d = s.opts.SlowDelay
	}
	if !s.flushing.Load() {
		wait.Sleep(context.Background(), d, s.done)
	}
	s.c.ended(j.tag, slow)
	close(j.done)
}

// slow reports whether request i is one of the slow share.
func (s *Server) slow(i int64) bool {
	f := s.opts.SlowShare
	return f > 0 && math.Floor(float64(i+1)*f) > math.Floor(float64(i)*f)
}

func (s *Server) connState(_ net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		s.conns.Add(1)
	case http.StateClosed, http.StateHijacked:
		s.conns.Add(-1)
	}
}

// Close stops the server at once: its listener, its connections, its
// slots; requests still queued are counted Unexecuted. It returns once
// every goroutine of the server has ended (at most a few seconds).
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	s.mu.Unlock()
	err := s.srv.Close()
	left := s.q.close()
	s.c.unexecuted.Add(int64(len(left)))
	s.c.queued.Add(-int64(len(left)))
	s.workers.Wait()
	s.handlers.Wait()
	<-s.served
	// Connection goroutines report StateClosed as they end, just after.
	deadline := time.Now().Add(5 * time.Second)
	for s.conns.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	return err
}
