// Package refserver is the reference backend used by warmpool's tests and by
// the `warmpool serve` and `warmpool bench` commands.
//
// It stands in for a real backend service: a frontend POSTs a JSON object with a
// bearer token to /answer and gets a JSON answer back. What makes it useful is
// that it counts connections on the server side, from http.Server.ConnState, so
// a test or a benchmark can prove that a client pools its connections: N
// requests over one warm keep-alive connection show up as Accepted == 1, while a
// client that dials per request shows Accepted == N.
//
// # Quick start
//
//	srv, err := refserver.New(refserver.Options{Proto: "tls", Token: "secret"})
//	if err != nil { ... }
//	defer srv.Close()
//	// point a client at srv.URL()+"/answer", trusting srv.ClientTLSConfig()
//	fmt.Println(srv.Stats().Accepted)
//
// # Endpoints
//
//   - POST /answer: the body must be a JSON object (at most 1 MiB; 400 if it
//     is not JSON, 413 if it is too large). The reply is application/json,
//     {"answer":"42","execution":7,"question":<echo>,"padding":"xxx…"},
//     padded to exactly Options.ResponseBytes. "execution" numbers the
//     executions of this server, so a replay is told apart from a re-run;
//     "question" echoes the request's "question" member and is omitted if
//     there is none. With Options.Token set, the request needs
//     "Authorization: Bearer <token>", else 401.
//   - GET /healthz: 200 "ok".
//   - GET /stats: the Stats snapshot as JSON with snake_case field names.
//
// # Knobs for fault and error tests
//
// Query parameters on /answer change one request:
//
//	status=503      reply this status with a small JSON body (an injected fault)
//	ctype=html      reply text/html instead of JSON (status 200 unless status= is given)
//	delay=50ms      extra service time; a cancelled request stops waiting at once
//	size=4096       response body size in bytes instead of Options.ResponseBytes
//	retry_after=2   set "Retry-After: 2" (use with status=429 or 503)
//	close=1         set "Connection: close" (a GOAWAY on HTTP/2)
//
// Server.SetStatus and Server.SetDelay do the same for every request; a status=
// knob wins over SetStatus, and delay= adds to SetDelay.
//
// An injected fault (status= or ctype=html or SetStatus) models a failure in
// front of the application, such as a load shedder or a proxy error page: it is
// not counted in Stats.Executions and is never stored for idempotency, so a
// client may retry it with the same Idempotency-Key and still see exactly one
// execution once the fault is lifted.
//
// # Idempotency
//
// A request carrying an Idempotency-Key header executes once; its response is
// stored (the last 100,000 keys) and every later request with the same key gets
// the stored response, with the header "Idempotent-Replayed: true", counted in
// Stats.Deduplicated rather than Stats.Executions. A duplicate that arrives while
// the first is still executing waits for it. If the first is cancelled before it
// finishes, nothing is stored and the next request with that key executes. The
// request body is not compared between duplicates.
//
// The order of checks on /answer is: bearer token (401), knobs (400), injected
// fault, body (400/413), idempotency replay, then the service delay and the
// execution itself.
//
// # Connection counting
//
// Accepted and Open count connections the http.Server has taken (StateNew);
// Closed counts StateClosed and StateHijacked. With Options.MaxConns, a
// connection accepted while MaxConns are open is closed at once, before any TLS
// handshake, and counted in Refused only (not in Accepted or Closed).
//
// # Behaving like a real server
//
// Real servers end keep-alive connections, and a pooled client must cope:
//
//   - Options.IdleTimeout closes a connection idle that long (uvicorn: 5 s).
//     On HTTP/1.1 the close comes exactly then, even if the client is about
//     to send on it: a client that reuses a connection idle for at least the
//     timeout reads EOF instead of an answer, the race behind most "server
//     closed idle connection" errors. On HTTP/2 the server sends a GOAWAY
//     then and closes a second later.
//   - Options.MaxRequestsPerConn ends a connection after N requests (nginx's
//     keepalive_requests, 1000 by default): "Connection: close" on the Nth
//     HTTP/1.1 answer, a graceful GOAWAY on HTTP/2.
//   - Options.ResetIdle makes those closes an RST (ECONNRESET), as a load
//     balancer's or a killed worker's are.
//   - Options.KeepAliveTimeoutHeader advertises the idle timeout in
//     "Keep-Alive: timeout=N", so a client can retire connections before it.
//
// Stats.ClosedIdle, ClosedMaxRequests, ClosedReset, GoAways and
// ConnRequestsMax count these server-side, so a test can assert, say, that a
// client saw no failure although the server ended 10 connections under it.
//
// # Restarting
//
// A test can Close a server and start a new one on the same address with
// New(Options{Addr: old.Addr()}): Go sets SO_REUSEADDR on listeners, so the
// port is reusable even while old connections sit in TIME_WAIT.
//
// Everything here is meant for loopback: the default address is 127.0.0.1:0
// and the TLS certificate is valid only for 127.0.0.1, ::1 and localhost.
package refserver
