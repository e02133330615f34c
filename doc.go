// Package warmpool is a pooled, authenticated HTTP client for
// service-to-service calls, built on net/http.
//
// A service that builds a new HTTP client per request pays a TCP handshake, a
// TLS handshake and often a token fetch on every call, and leaves sockets in
// TIME_WAIT. warmpool is the one long-lived client per process that removes
// all three:
//
//	client, err := warmpool.New(warmpool.DefaultConfig(),
//		warmpool.WithTokenSource(warmpool.StaticToken(os.Getenv("TOKEN"))))
//	if err != nil { ... }
//	defer client.Shutdown(context.Background())
//
//	var out Answer
//	err = client.PostJSON(ctx, "https://backend.internal/answer", question, &out)
//
// # What it adds to net/http
//
// net/http already pools connections. warmpool adds what it lacks:
//
//   - Idle retention that follows demand. net/http keeps 2 idle connections
//     per host by default and closes the rest as each response completes, so
//     32 concurrent callers churn through new connections. warmpool keeps as
//     many idle connections as were in flight at the recent peak (at least
//     max_keepalive_connections, at most max_connections) and trims back
//     once demand has stayed lower for a tenth of keepalive_expiry.
//   - Connections closed before the server's idle timeout: warmpool learns
//     each server's (Keep-Alive header, or the idle time of a connection the
//     server closed) and closes idle connections a margin before it, so no
//     request goes out on a connection as the server closes it. The first
//     such race, if any, is an *IdleCloseError that says what to change.
//   - Only the dials waiting requests need (a gate, event-driven): one per
//     HTTP/2 GOAWAY, no surplus HTTP/1.1 connections under bursts.
//   - A bounded wait for a connection. With all max_connections of a host
//     busy, net/http queues a request without limit; warmpool fails it with
//     ErrPoolTimeout after pool_timeout.
//   - A connection lifetime (max_connection_age), so traffic reaches new
//     backend replicas.
//   - Load spread over replicas. net/http dials the first address of a host
//     name that answers and keeps reusing that connection, so a warm pool
//     pins a process to one replica. warmpool resolves each name to all its
//     addresses (every resolve_interval, and after a dial failure; any
//     Resolver, see WithResolver), keeps a pool per address, picks one per
//     attempt (balancer: p2c, round_robin or first), ejects addresses that
//     keep failing (eject_after_failures, eject_duration,
//     max_ejected_percent), and drains those that leave the name. The TLS
//     server name and the Host header stay the name.
//   - Safe retries: only what provably did not run, or is idempotent, with
//     full-jitter backoff, Retry-After, and a retry budget (RetryError).
//   - Cached bearer tokens (TokenCache), fetched once per lifetime and
//     shared by all callers, within each call's request_timeout, never
//     printed; a failing source is asked a few times a second, not per call.
//   - Pool statistics (Stats, Hooks, LogStats, packages prom and otel), one
//     classification of failures (ErrorKind), and package doctor to read
//     them.
//
// # Configuration
//
// Config holds every setting; DefaultConfig gives the defaults and LoadConfig
// reads the http_client block of a YAML file and WARMPOOL_<KEY> environment
// variables:
//
//	http_client:
//	  max_keepalive_connections: 20
//	  max_connections: 100
//	  keepalive_expiry: 30.0
//	  connection_timeout: 10.0
//	  request_timeout: 30.0
//	  pool_timeout: 5.0
//	  enable_http2: true
//	  h2c: false
//	  max_retries: 3
//	  retry_backoff_factor: 0.5
//	  max_response_bytes: 10485760
//	  resolve_interval: 30.0
//	  balancer: p2c
//	  eject_after_failures: 5
//	  eject_duration: 30.0
//	  max_ejected_percent: 50
//	  learn_idle_timeout: true
//
// A zero field of a Config means its default, however the Config was made;
// off is explicit (DisableHTTP2, MaxRetries: -1, …: see Config).
//
// # How pooling is measured
//
// Every connection is dialed through a counting wrapper, so Stats knows how
// many are open, in use and idle, why each closed, and which requests reused
// one (httptrace GotConn). The reference server in internal/refserver counts
// the same connections from the server side (http.Server.ConnState); the
// tests assert the two agree, and `warmpool bench` prints both.
package warmpool
