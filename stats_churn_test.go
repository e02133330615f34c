package warmpool

import (
	"log/slog"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/refserver"
)

// TestStatsMatchServerUnderChurn checks warmpool's counters against the
// server's, exactly, while the server ends connections under the client:
// after MaxRequestsPerConn requests (Connection: close or GOAWAY), and when
// idle (RST), with gaps between bursts longer than the idle timeout.
func TestStatsMatchServerUnderChurn(t *testing.T) {
	const (
		bursts  = 6
		callers = 16
	)
	scenarios := []struct {
		name  string
		opts  refserver.Options
		gap   time.Duration
		pairs int // GET + POST pairs per caller and burst
	}{
		// 16 callers × 5 pairs × 6 bursts: 960 requests, about 60 per
		// connection, past the limit of 50.
		{"max_requests", refserver.Options{MaxRequestsPerConn: 50}, 0, 5},
		{"idle_reset", refserver.Options{IdleTimeout: 100 * time.Millisecond, ResetIdle: true}, 150 * time.Millisecond, 1},
	}
	for _, proto := range []string{"http", "tls", "h2c"} {
		for _, sc := range scenarios {
			t.Run(proto+"/"+sc.name, func(t *testing.T) {
				opts := sc.opts
				opts.Proto = proto
				srv := startServer(t, opts)
				cfg := DefaultConfig()
				cfg.H2C = proto == "h2c"
				c := newClient(t, srv, cfg, WithLogger(slog.New(slog.DiscardHandler)))

				// A mixed load: each caller GETs /healthz through Do and
				// POSTs /answer through PostJSON, in bursts.
				var failed int
				var first error
				for b := range bursts {
					if b > 0 {
						time.Sleep(sc.gap)
					}
					errs := load(t, callers*sc.pairs, callers, func(int) error {
						if err := getURL(c, srv.URL()+"/healthz"); err != nil {
							return err
						}
						return post(c, srv.URL()+"/answer")
					})
					ok, _, _, err := countErrs(errs, nil)
					failed += len(errs) - ok
					if first == nil {
						first = err
					}
				}
				if failed > 0 {
					t.Logf("%d of %d GET + POST pairs failed; first error: %v", failed, bursts*callers*sc.pairs, first)
				}
				if sc.opts.IdleTimeout > 0 {
					// Let the idle timeout end every connection, so each
					// close is counted with its reason: an HTTP/2 server
					// closes a second after its idle GOAWAY.
					// A connection dialed but never used stays open on both
					// sides: servers time out idle connections, not new ones.
					deadline := time.Now().Add(3 * time.Second)
					for st := c.Stats(); srv.Stats().Open != st.Open || c.usedOpen() != 0; st = c.Stats() {
						if time.Now().After(deadline) {
							t.Fatalf("after 3s: server open %d, client open %d (used %d, in use %d, in flight %d), want the used ones closed; client closed by %+v",
								srv.Stats().Open, st.Open, c.usedOpen(), st.InUse, st.InFlight, st.ClosedBy)
						}
						time.Sleep(5 * time.Millisecond) // a poll: the closes come from the server's side
					}
				}
				waitFor(t, "the server's open connections to match the client's", 3*time.Second, func() bool {
					return srv.Stats().Open == c.Stats().Open
				})
				st, ss := c.Stats(), srv.Stats()
				t.Logf("client: created %d, requests %d, reused %d, closed by %+v, failures %v; server: accepted %d, requests %d, closed idle %d, closed max requests %d, resets %d, goaways %d",
					st.Created, st.Requests, st.Reused, st.ClosedBy, st.FailuresByKind,
					ss.Accepted, ss.Requests, ss.ClosedIdle, ss.ClosedMaxRequests, ss.ClosedReset, ss.GoAways)
				if st.Created != ss.Accepted {
					t.Errorf("Stats().Created: got %d, want %d (server Accepted)", st.Created, ss.Accepted)
				}
				// Requests, not Executions: the GETs to /healthz reach a
				// handler too, and Executions counts only /answer.
				if st.Requests != ss.Requests {
					t.Errorf("Stats().Requests: got %d, want %d (server Requests)", st.Requests, ss.Requests)
				}
				if sc.opts.ResetIdle {
					if st.ClosedBy.Error != 0 {
						t.Errorf("ClosedBy.Error: got %d, want 0 (idle connections reset by the server count as Server)", st.ClosedBy.Error)
					}
					// The server counts a reset for every connection it
					// closes after the idle timeout, also one the client
					// closed first (then the client counts learned_idle).
					if st.ClosedBy.Server < 1 || st.ClosedBy.Server > ss.ClosedReset {
						t.Errorf("ClosedBy.Server: got %d, want 1..%d (server ClosedReset)", st.ClosedBy.Server, ss.ClosedReset)
					}
				}

				c.Close()
				st = c.Stats()
				if st.Closed != st.Created {
					t.Errorf("after Close, Stats().Closed: got %d, want %d (Created)", st.Closed, st.Created)
				}
				// Every connection that served no request closed as unused,
				// so each other one served a first request that was not a
				// reuse.
				if want := st.Requests - st.Created + st.ClosedBy.Unused; st.Reused != want {
					t.Errorf("Stats().Reused: got %d, want Requests − Created + ClosedBy.Unused = %d − %d + %d = %d",
						st.Reused, st.Requests, st.Created, st.ClosedBy.Unused, want)
				}
			})
		}
	}
}

// usedOpen counts c's open connections that have served a request.
func (c *Client) usedOpen() int64 {
	var n int64
	for _, p := range c.pools.all() {
		for _, cn := range p.conns.list() {
			if cn.served.Load() {
				n++
			}
		}
	}
	return n
}
