// Package warmpooltest starts a reference backend for your own tests, as
// net/http/httptest does for handlers: a real server on 127.0.0.1 that counts
// connections on its side, so a test can prove what a pooled client does to
// the servers it calls, and that can behave like the servers you run in
// production, closing idle connections, ending busy ones, resetting them.
//
// # Why count on the server side
//
// A client's own statistics say what the client believes. The server's say
// what happened on the wire: 100 requests that arrive over one connection
// show up as Accepted == 1, a client that dials per request as Accepted ==
// 100. Stats.PeakOpen bounds the connections a client held at once, and
// Stats.ClosedIdle, ClosedMaxRequests and GoAways count the connections the
// server ended under the client, which a well-behaved client survives
// without an error.
//
// # Quick start
//
//	func TestCheckout(t *testing.T) {
//		srv := warmpooltest.NewServer(t, warmpooltest.Options{Proto: "tls", Token: "secret"})
//		client, err := warmpool.New(warmpool.DefaultConfig(),
//			warmpool.WithTLSConfig(srv.TLSConfig()),
//			warmpool.WithTokenSource(warmpool.StaticToken("secret")))
//		if err != nil {
//			t.Fatal(err)
//		}
//		defer client.Close()
//		for range 100 {
//			if err := client.PostJSON(t.Context(), srv.AnswerURL(), map[string]string{"question": "why?"}, nil); err != nil {
//				t.Fatal(err)
//			}
//		}
//		if got := srv.Stats().Accepted; got != 1 {
//			t.Errorf("connections: got %d, want 1", got)
//		}
//	}
//
// NewServer closes the server when the test ends. Start does the same
// without a test, for TestMain or an Example; then call Close yourself.
//
// # The backend
//
// POST /answer takes a JSON object and answers
// {"answer":"42","execution":N,"question":<echo>,"padding":"xxx…"}, padded
// to Options.ResponseBytes (961 by default). With Options.Token set it
// requires "Authorization: Bearer <token>" and answers 401 without it.
// "execution" numbers the answers actually executed: a request carrying an
// Idempotency-Key executes once, and a retry with the same key is replayed
// with "Idempotent-Replayed: true" (Stats.Deduplicated). GET /healthz answers
// "ok" and GET /stats the server's counters as JSON.
//
// Query parameters on /answer inject a fault into one request:
//
//	status=503      reply this status with a small JSON body
//	ctype=html      reply an HTML page, as a proxy's error page
//	delay=50ms      extra service time
//	size=4096       response body size in bytes
//	retry_after=2   set "Retry-After: 2" (with status=429 or 503)
//	close=1         set "Connection: close" (a GOAWAY on HTTP/2)
//
// Server.SetStatus and Server.SetDelay do the same for every request until
// changed, to take a backend down and bring it back in the middle of a test.
//
// # Behaving like production servers
//
// The Options below reproduce what breaks pooled clients in production:
//
//   - IdleTimeout: uvicorn closes a keep-alive connection after 5 s idle,
//     Node after 5 s, nginx after 75 s. On HTTP/1.1 the close comes exactly
//     then, so a client that reuses a connection idle that long races the
//     close and may read EOF instead of an answer. Keep a client's idle
//     timeout below the server's; this option lets a test check it.
//   - MaxRequestsPerConn: nginx ends a connection after keepalive_requests
//     (1000) requests: "Connection: close" on HTTP/1.1, a GOAWAY on HTTP/2.
//   - ResetIdle: those closes become a TCP RST, as a load balancer's are:
//     ECONNRESET instead of EOF.
//   - KeepAliveTimeoutHeader: "Keep-Alive: timeout=N" advertises the idle
//     timeout, as some servers do.
//
// The same server runs from the command line as "warmpool serve", with one
// flag per option (-idle-timeout, -max-requests-per-conn, -reset,
// -keepalive-header).
package warmpooltest
