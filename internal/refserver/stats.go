package refserver

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
)

// Stats is a snapshot of the server's counters. Connection counts come from
// http.Server.ConnState, so they are the server's view: what a pooling client
// is measured by. Fields are read one by one, so a snapshot taken under load is
// consistent enough for reporting but not atomic as a whole.
type Stats struct {
	// Accepted counts connections taken by the http.Server (StateNew).
	Accepted int64 `json:"accepted"`
	// Open is Accepted minus Closed: connections open now.
	Open int64 `json:"open"`
	// PeakOpen is the most connections open at once since start or ResetPeak.
	PeakOpen int64 `json:"peak_open"`
	// Closed counts connections that reached StateClosed or StateHijacked.
	Closed int64 `json:"closed"`
	// Refused counts connections closed on accept because MaxConns were open.
	Refused int64 `json:"refused"`
	// Requests counts every HTTP request served, on any path.
	Requests int64 `json:"requests"`
	// Executions counts /answer requests that actually executed: not replayed,
	// not rejected, not an injected fault, not cancelled.
	Executions int64 `json:"executions"`
	// Deduplicated counts /answer requests answered from the Idempotency-Key store.
	Deduplicated int64 `json:"deduplicated"`
	// Unauthorized counts /answer requests rejected for a missing or wrong token.
	Unauthorized int64 `json:"unauthorized"`
	// InFlight is the number of requests being handled now.
	InFlight int64 `json:"in_flight"`
	// Protocols counts requests by r.Proto ("HTTP/1.1", "HTTP/2.0"). Never nil.
	Protocols map[string]int64 `json:"protocols"`

	// ClosedIdle counts connections closed by Options.IdleTimeout: HTTP/1.1
	// ones closed after that long idle, HTTP/2 ones sent a GOAWAY then and
	// closed when the client hung up or a second later. Part of Closed.
	ClosedIdle int64 `json:"closed_idle"`
	// ClosedMaxRequests counts connections closed after serving
	// Options.MaxRequestsPerConn requests: HTTP/1.1 ones after the answer
	// carrying "Connection: close", HTTP/2 ones after the GOAWAY and the
	// streams it let finish. Part of Closed.
	ClosedMaxRequests int64 `json:"closed_max_requests"`
	// ClosedReset counts connections of ClosedIdle and ClosedMaxRequests that
	// were closed with a TCP RST because of Options.ResetIdle.
	ClosedReset int64 `json:"closed_reset"`
	// GoAways counts HTTP/2 connections the server told to go away, other than
	// at Shutdown: at Options.MaxRequestsPerConn (counted as the answer is
	// sent), on the close=1 knob, and at Options.IdleTimeout (counted at
	// close).
	GoAways int64 `json:"goaways"`
	// ConnRequestsMax is the most requests served on one connection. With
	// MaxRequestsPerConn N it is N on HTTP/1.1; on HTTP/2 it may exceed N by
	// the streams the client opened before it read the GOAWAY. The mean is
	// Requests / Accepted.
	ConnRequestsMax int64 `json:"conn_requests_max"`
	// IdleTimeoutMS and MaxRequestsPerConn are the server's limits
	// (Options.IdleTimeout in milliseconds, Options.MaxRequestsPerConn), 0 for
	// none, so a reader of /stats can judge the counts above without the
	// command line.
	IdleTimeoutMS      int64 `json:"idle_timeout_ms"`
	MaxRequestsPerConn int64 `json:"max_requests_per_conn"`
}

// counters are the live values behind Stats; the request path touches only
// atomics (and, once per new protocol string, a sync.Map store).
type counters struct {
	accepted, open, peakOpen, closed, refused atomic.Int64

	requests, executions, deduplicated, unauthorized, inFlight atomic.Int64

	closedIdle, closedMaxReqs, resets, goAways, connRequestsMax atomic.Int64

	protocols sync.Map // string -> *atomic.Int64
}

func (c *counters) addProto(proto string) {
	v, ok := c.protocols.Load(proto)
	if !ok {
		v, _ = c.protocols.LoadOrStore(proto, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(1)
}

// raisePeak lifts peak to n unless it is already at least n.
func raisePeak(peak *atomic.Int64, n int64) {
	for {
		p := peak.Load()
		if n <= p || peak.CompareAndSwap(p, n) {
			return
		}
	}
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	st := Stats{
		Accepted:     s.c.accepted.Load(),
		Open:         s.c.open.Load(),
		PeakOpen:     s.c.peakOpen.Load(),
		Closed:       s.c.closed.Load(),
		Refused:      s.c.refused.Load(),
		Requests:     s.c.requests.Load(),
		Executions:   s.c.executions.Load(),
		Deduplicated: s.c.deduplicated.Load(),
		Unauthorized: s.c.unauthorized.Load(),
		InFlight:     s.c.inFlight.Load(),
		Protocols:    make(map[string]int64),

		ClosedIdle:         s.c.closedIdle.Load(),
		ClosedMaxRequests:  s.c.closedMaxReqs.Load(),
		ClosedReset:        s.c.resets.Load(),
		GoAways:            s.c.goAways.Load(),
		ConnRequestsMax:    s.c.connRequestsMax.Load(),
		IdleTimeoutMS:      s.opts.IdleTimeout.Milliseconds(),
		MaxRequestsPerConn: int64(s.opts.MaxRequestsPerConn),
	}
	s.c.protocols.Range(func(k, v any) bool {
		st.Protocols[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return st
}

// ResetPeak sets PeakOpen to the connections open now, so a benchmark phase can
// measure its own peak.
func (s *Server) ResetPeak() { s.c.peakOpen.Store(s.c.open.Load()) }

// instrument counts every request, whatever the path, and applies the
// per-connection limits (conns.go).
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.c.requests.Add(1)
		s.c.inFlight.Add(1)
		defer s.c.inFlight.Add(-1)
		s.c.addProto(r.Proto)
		tc := s.beginRequest(w, r)
		next.ServeHTTP(w, r)
		endRequest(tc, w, r)
	})
}

func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok"))
}

// handleStats serves the Stats snapshot; it counts itself in Requests and InFlight.
func (s *Server) handleStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Stats())
}

// writeJSON replies with v as JSON; v must be marshalable.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "refserver: marshal: "+err.Error(), http.StatusInternalServerError)
		return
	}
	body = append(body, '\n')
	writeBody(w, status, "application/json", body)
}

func writeBody(w http.ResponseWriter, status int, ctype string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}
