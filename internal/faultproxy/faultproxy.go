// Package faultproxy runs a toxiproxy proxy inside a test process, between a
// client and a server on loopback, to inject network faults: latency, black
// holes, cut streams, resets, and an outage of the whole proxy.
//
//	p, err := faultproxy.New(srv.Addr()) // listens on 127.0.0.1:0
//	if err != nil { ... }
//	defer p.Close()
//	// point the client at "http://" + p.Addr()
//	p.AddToxic(faultproxy.Latency("slow", faultproxy.Downstream, time.Second))
//	p.Disable() // refuse connections and drop open ones, as a network outage
//	p.Enable()  // listen again on the same address
//
// Toxics are toxiproxy's (github.com/Shopify/toxiproxy/v2): the proxy keeps
// a toxiproxy ToxicCollection and starts its links, but accepts and tracks
// connections itself, so that Close can end every goroutine it started,
// which goleak checks. Two things make that possible:
//
//   - Each link writes through a sink that never fails: once a write to its
//     connection fails, it discards the rest. toxiproxy stops reading a link
//     whose write fails, which leaves the toxics before it blocked forever on
//     a channel nobody reads; draining to the end lets every stage see the
//     end of its stream and return.
//   - Toxics that stop reading their input before it ends (limit_data,
//     reset_peer, and timeout with a non-zero timeout) are refused, for the
//     same reason. Cut replaces limit_data; ResetPeers replaces reset_peer
//     (whose SO_LINGER setup needs the bare *net.TCPConn, which the sink
//     hides); Timeout (a black hole with timeout 0) drains as it should.
//
// Everything binds to 127.0.0.1. The package is for tests only.
package faultproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/stream"
	"github.com/rs/zerolog"
)

// Streams a toxic applies to.
const (
	Upstream   = "upstream"   // client to server
	Downstream = "downstream" // server to client
)

// upstreamDialTimeout bounds the dial to the upstream for one accepted
// connection; on loopback it is refused or accepted at once.
const upstreamDialTimeout = 2 * time.Second

// closeWait bounds how long Close waits for the goroutines of every link to
// end after their connections were closed; they normally take microseconds.
const closeWait = 10 * time.Second

// Proxy forwards TCP connections from its listen address to an upstream
// through toxics. Its methods are safe for concurrent use.
type Proxy struct {
	upstream string
	addr     string // fixed at New: Enable listens here again
	tp       *toxiproxy.Proxy
	api      *toxiproxy.ApiServer

	mu      sync.Mutex
	ln      net.Listener // nil while disabled
	pairs   map[*pair]struct{}
	closed  bool
	serving sync.WaitGroup // accept loops and connection setups

	links    atomic.Int64 // links whose write side has not finished
	linkDone chan struct{}
	accepted atomic.Int64
	seq      atomic.Int64
}

// pair is one proxied connection: the client's and the upstream's ends.
type pair struct {
	client, upstream *net.TCPConn
	open             atomic.Int32 // links not yet finished, from 2
}

// New starts a proxy on a free port of 127.0.0.1 in front of upstream
// ("host:port"), with no toxics.
func New(upstream string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: %w", err)
	}
	api := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	p := &Proxy{
		upstream: upstream,
		addr:     ln.Addr().String(),
		api:      api,
		ln:       ln,
		pairs:    make(map[*pair]struct{}),
		linkDone: make(chan struct{}, 1),
	}
	// The toxiproxy Proxy is never started: it holds the toxics and names
	// the links; this package accepts and dials.
	p.tp = toxiproxy.NewProxy(api, "faultproxy", p.addr, upstream)
	p.serving.Add(1)
	go p.accept(ln)
	return p, nil
}

// Addr is the listen address, "127.0.0.1:PORT". It stays the same across
// Disable and Enable.
func (p *Proxy) Addr() string { return p.addr }

// Upstream is the address the proxy forwards to.
func (p *Proxy) Upstream() string { return p.upstream }

// Accepted counts the client connections the proxy has accepted.
func (p *Proxy) Accepted() int64 { return p.accepted.Load() }

// Open is the number of proxied connections not yet fully closed.
func (p *Proxy) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pairs)
}

func (p *Proxy) accept(ln net.Listener) {
	defer p.serving.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return // closed by Disable or Close
		}
		p.accepted.Add(1)
		p.serving.Add(1)
		go p.connect(c.(*net.TCPConn))
	}
}

// connect dials the upstream for client and links the two through the toxics.
func (p *Proxy) connect(client *net.TCPConn) {
	defer p.serving.Done()
	d := net.Dialer{Timeout: upstreamDialTimeout}
	uc, err := d.Dial("tcp", p.upstream)
	if err != nil {
		client.Close() // the client sees its connection closed at once
		return
	}
	pr := &pair{client: client, upstream: uc.(*net.TCPConn)}
	pr.open.Store(2)
	p.mu.Lock()
	if p.ln == nil || p.closed { // disabled while dialing
		p.mu.Unlock()
		pr.client.Close()
		pr.upstream.Close()
		return
	}
	p.pairs[pr] = struct{}{}
	p.links.Add(2)
	p.mu.Unlock()

	name := strconv.FormatInt(p.seq.Add(1), 10) + "-" + client.RemoteAddr().String()
	p.tp.Toxics.StartLink(p.api, name+"upstream", pr.client, &sink{c: pr.upstream, done: func() { p.finished(pr) }}, stream.Upstream)
	p.tp.Toxics.StartLink(p.api, name+"downstream", pr.upstream, &sink{c: pr.client, done: func() { p.finished(pr) }}, stream.Downstream)
}

// finished is called as each link of pr ends.
func (p *Proxy) finished(pr *pair) {
	if pr.open.Add(-1) == 0 {
		p.mu.Lock()
		delete(p.pairs, pr)
		p.mu.Unlock()
	}
	if p.links.Add(-1) == 0 {
		select {
		case p.linkDone <- struct{}{}:
		default:
		}
	}
}

// sink is the write end of a link. toxiproxy closes it when its stream ends.
// A failed write closes the connection and discards everything after it, so
// that the link keeps draining its toxics to the end of the stream.
type sink struct {
	c      *net.TCPConn
	failed bool // only the link's write goroutine writes
	once   sync.Once
	done   func()
}

func (s *sink) Write(b []byte) (int, error) {
	if !s.failed {
		if _, err := s.c.Write(b); err != nil {
			s.failed = true
			s.c.Close() // the other link's read fails too, ending the pair
		}
	}
	return len(b), nil
}

func (s *sink) Close() error {
	s.once.Do(func() {
		s.c.Close()
		s.done()
	})
	return nil
}

// Disable stops listening, so new connections are refused, and closes every
// proxied connection: a network outage as the client sees it. It is a no-op
// if the proxy is already disabled.
func (p *Proxy) Disable() {
	p.mu.Lock()
	ln := p.ln
	p.ln = nil
	pairs := p.snapshotLocked()
	p.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	for _, pr := range pairs {
		pr.client.Close()
		pr.upstream.Close()
	}
}

// Enable listens again on the proxy's address after Disable. It is a no-op
// if the proxy is enabled.
func (p *Proxy) Enable() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("faultproxy: enable after close")
	}
	if p.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return fmt.Errorf("faultproxy: enable: %w", err)
	}
	p.ln = ln
	p.serving.Add(1)
	go p.accept(ln)
	return nil
}

// ResetPeers resets every proxied connection: the client's end is closed
// with SO_LINGER 0, so the client reads "connection reset by peer", and the
// upstream's end is closed. It returns how many connections it reset.
func (p *Proxy) ResetPeers() int {
	p.mu.Lock()
	pairs := p.snapshotLocked()
	p.mu.Unlock()
	for _, pr := range pairs {
		_ = pr.client.SetLinger(0)
		pr.client.Close()
		_ = pr.upstream.SetLinger(0)
		pr.upstream.Close()
	}
	return len(pairs)
}

func (p *Proxy) snapshotLocked() []*pair {
	out := make([]*pair, 0, len(p.pairs))
	for pr := range p.pairs {
		out = append(out, pr)
	}
	return out
}

// Close disables the proxy and waits until every goroutine it started, its
// own and toxiproxy's, has ended or is about to. It is idempotent.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.Disable()
	p.serving.Wait()
	// No link can start now; wait for the started ones to drain.
	deadline := time.NewTimer(closeWait)
	defer deadline.Stop()
	for p.links.Load() > 0 {
		select {
		case <-p.linkDone:
		case <-deadline.C:
			return fmt.Errorf("faultproxy: %d links still running %s after close", p.links.Load(), closeWait)
		}
	}
	return nil
}

// Toxic describes a toxic to add: a toxiproxy type and its attributes.
type Toxic struct {
	Name     string  // unique per proxy; default "<type>_<stream>"
	Type     string  // a toxiproxy type ("latency", "timeout", "bandwidth", "slicer", "slow_close") or "cut"
	Stream   string  // Upstream or Downstream; default Downstream
	Toxicity float32 // probability it applies to a connection, decided per link; 0 means 1
	// Attributes are the type's attributes, marshalled to JSON, such as
	// map[string]any{"latency": 500}.
	Attributes any
}

// AddToxic adds t to every connection, open and future.
func (p *Proxy) AddToxic(t Toxic) error {
	switch t.Type {
	case "limit_data":
		return errors.New("faultproxy: limit_data stops draining its input and can leak goroutines; use Cut")
	case "reset_peer":
		return errors.New("faultproxy: reset_peer is not supported; use ResetPeers")
	case "timeout":
		if ms := attrInt(t.Attributes, "timeout"); ms != 0 {
			return errors.New("faultproxy: timeout with a non-zero timeout stops draining its input and can leak goroutines; use timeout 0 (a black hole)")
		}
	}
	if t.Stream == "" {
		t.Stream = Downstream
	}
	if t.Toxicity == 0 {
		t.Toxicity = 1
	}
	body, err := json.Marshal(struct {
		Name       string  `json:"name,omitempty"`
		Type       string  `json:"type"`
		Stream     string  `json:"stream"`
		Toxicity   float32 `json:"toxicity"`
		Attributes any     `json:"attributes,omitempty"`
	}{t.Name, toxicType(t.Type), t.Stream, t.Toxicity, t.Attributes})
	if err != nil {
		return fmt.Errorf("faultproxy: %w", err)
	}
	if _, err := p.tp.Toxics.AddToxicJson(bytes.NewReader(body)); err != nil {
		return fmt.Errorf("faultproxy: add toxic %s: %w", body, err)
	}
	return nil
}

// RemoveToxic removes the toxic named name from every connection.
func (p *Proxy) RemoveToxic(name string) error {
	if err := p.tp.Toxics.RemoveToxic(context.Background(), name); err != nil {
		return fmt.Errorf("faultproxy: remove toxic %q: %w", name, err)
	}
	return nil
}

// RemoveAllToxics removes every toxic.
func (p *Proxy) RemoveAllToxics() { p.tp.Toxics.ResetToxics(context.Background()) }

// attrInt reads an integer attribute from a map of attributes, 0 if absent.
func attrInt(attrs any, key string) int64 {
	b, err := json.Marshal(attrs)
	if err != nil {
		return 0
	}
	var m map[string]json.Number
	if json.Unmarshal(b, &m) != nil {
		return 0
	}
	n, _ := m[key].Int64()
	return n
}

// Latency delays every chunk on stream by d.
func Latency(name, stream string, d time.Duration) Toxic {
	return Toxic{Name: name, Type: "latency", Stream: stream, Attributes: map[string]any{"latency": d.Milliseconds()}}
}

// Timeout is a black hole: nothing on stream gets through and the
// connection stays open, until it is closed from the other side.
func Timeout(name, stream string) Toxic {
	return Toxic{Name: name, Type: "timeout", Stream: stream, Attributes: map[string]any{"timeout": 0}}
}

// Cut lets the first n bytes of each connection's stream through, then ends
// that stream (the receiver reads EOF) and discards the rest.
func Cut(name, stream string, n int64) Toxic {
	return Toxic{Name: name, Type: "cut", Stream: stream, Attributes: map[string]any{"bytes": n}}
}
