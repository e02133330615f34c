package warmpooltest

// Stats is a snapshot of the server's counters, the server's view of the
// connections a client made. Fields are read one by one, so a snapshot taken
// under load is not atomic as a whole; take it after the load for exact
// counts. The JSON names are those of GET /stats.
type Stats struct {
	// Accepted counts the connections the server took.
	Accepted int64 `json:"accepted"`
	// Open is the connections open now: Accepted minus Closed.
	Open int64 `json:"open"`
	// PeakOpen is the most connections open at once, since start or
	// ResetPeak.
	PeakOpen int64 `json:"peak_open"`
	// Closed counts connections closed, by either side.
	Closed int64 `json:"closed"`
	// Refused counts connections closed on accept because Options.MaxConns
	// were open; they are not in Accepted.
	Refused int64 `json:"refused"`
	// Requests counts the requests served, on every path.
	Requests int64 `json:"requests"`
	// Executions counts /answer requests executed: not replayed from an
	// Idempotency-Key, not rejected, not an injected fault, not cancelled.
	Executions int64 `json:"executions"`
	// Deduplicated counts /answer requests replayed from an Idempotency-Key.
	Deduplicated int64 `json:"deduplicated"`
	// Unauthorized counts /answer requests without the right bearer token.
	Unauthorized int64 `json:"unauthorized"`
	// InFlight is the requests being served now.
	InFlight int64 `json:"in_flight"`
	// Protocols counts requests by protocol, "HTTP/1.1" or "HTTP/2.0".
	Protocols map[string]int64 `json:"protocols"`

	// ClosedIdle counts connections closed by Options.IdleTimeout.
	ClosedIdle int64 `json:"closed_idle"`
	// ClosedMaxRequests counts connections closed after
	// Options.MaxRequestsPerConn requests.
	ClosedMaxRequests int64 `json:"closed_max_requests"`
	// ClosedReset counts the connections of ClosedIdle and ClosedMaxRequests
	// closed with an RST (Options.ResetIdle).
	ClosedReset int64 `json:"closed_reset"`
	// GoAways counts HTTP/2 connections sent a GOAWAY by
	// Options.MaxRequestsPerConn, Options.IdleTimeout or the close=1 knob.
	GoAways int64 `json:"goaways"`
	// ConnRequestsMax is the most requests served on one connection. With
	// MaxRequestsPerConn N it is N on HTTP/1.1, and on HTTP/2 at most N plus
	// the streams the client opened before it read the GOAWAY.
	ConnRequestsMax int64 `json:"conn_requests_max"`
	// IdleTimeoutMS and MaxRequestsPerConn repeat the server's limits, 0 for
	// none.
	IdleTimeoutMS      int64 `json:"idle_timeout_ms"`
	MaxRequestsPerConn int64 `json:"max_requests_per_conn"`
}

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() Stats {
	st := s.srv.Stats()
	return Stats{
		Accepted:           st.Accepted,
		Open:               st.Open,
		PeakOpen:           st.PeakOpen,
		Closed:             st.Closed,
		Refused:            st.Refused,
		Requests:           st.Requests,
		Executions:         st.Executions,
		Deduplicated:       st.Deduplicated,
		Unauthorized:       st.Unauthorized,
		InFlight:           st.InFlight,
		Protocols:          st.Protocols,
		ClosedIdle:         st.ClosedIdle,
		ClosedMaxRequests:  st.ClosedMaxRequests,
		ClosedReset:        st.ClosedReset,
		GoAways:            st.GoAways,
		ConnRequestsMax:    st.ConnRequestsMax,
		IdleTimeoutMS:      st.IdleTimeoutMS,
		MaxRequestsPerConn: st.MaxRequestsPerConn,
	}
}
