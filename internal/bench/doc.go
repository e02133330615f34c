// Package bench is the engine of "warmpool bench": it loads one server with
// several HTTP clients in turn, at the same load, and reports what each costs.
//
// # What is compared
//
// A run is one mode over one protocol. The modes are ways of holding an HTTP
// client (ModePerRequest, ModeDefault, ModeTuned, ModeWarmpool,
// ModeWarmpoolH2); the protocols are cleartext HTTP/1.1, TLS and h2c. For each
// protocol, Run starts the reference server (internal/refserver) in-process on
// 127.0.0.1, or uses the server at Settings.Target, and runs the modes one
// after the other. Between runs it closes the previous client, waits until
// the server has seen its connections close, and collects garbage, so each
// run starts from the same state.
//
// # How it loads the server
//
// In the closed model, Settings.Concurrency workers each send a request, read
// the answer to the end, and send the next. In the open model (Settings.Rate)
// request i is due at start + i/rate whatever happened before, at most
// Concurrency are in flight, and a request's latency runs from when it was
// due: a server that slows down shows it in the latency, rather than in
// requests that were never sent (coordinated omission). Every run stops by
// itself at Settings.Duration or Settings.Requests; answers still awaited
// then get a grace period, after which they are cancelled and counted apart.
//
// # What is measured, and where
//
//   - Latency of successful requests into an HdrHistogram (1 µs to 1 h, three
//     significant digits), with exact minimum and maximum.
//   - Errors by kind, as warmpool.ErrorKind names them (the module's one
//     classifier), summed into the coarse groups of the first schema
//     (ErrorCounts), and non-2xx answers by status code.
//   - Connections from the server's side: refserver's own counters, or GET
//     /stats of an external server. A client's own count could not tell a
//     connection the server closed from one it kept.
//   - Reuse, time dialing and in TLS handshakes from net/http/httptrace, as
//     rakyll/hey does; warmpool makes its TLS handshakes in its dialer, so
//     for its modes the TLS figures come from warmpool.Client.Stats.
//   - CPU from getrusage(RUSAGE_SELF): the whole process, which includes the
//     in-process server and proxy. It ranks modes; it is not a client's cost
//     alone.
//
// # Simulated network
//
// With Settings.RTT, an in-process toxiproxy sits between client and server
// and delays bytes by RTT/2 each way. A loopback proxy cannot delay the TCP
// handshake (the kernel completes it), so a toxic of our own holds the first
// bytes of each connection for one more RTT: a new connection then costs its
// round trips as on a network. Before the runs, Run measures what the proxy
// costs by itself and puts it in the report.
//
// # Tokens
//
// Settings.TokenMode says where each request's bearer token comes from.
// TokenNone, the default, sends one static token: it measures the clients
// alone. With TokenPerRequest or TokenCached, Run starts, next to each
// in-process server, a fake token issuer on 127.0.0.1 (tokenIssuer) that
// answers GET /token?audience=<origin> after Settings.TokenFetch with a JWT
// whose exp is an hour after the server started, and counts what it hands
// out. It hands out the token the server was started with: the server keeps
// checking every request, so a request sent without the issued token fails
// with 401 and shows as a status error. (Starting the server without a token
// requirement would have let such a request pass unseen.) A real issuer mints
// a new JWT per fetch; that costs microseconds against the fetch's delay.
//
// TokenPerRequest fetches before every request, over a new http.Client and
// transport per fetch (tokenFetcher), as a frontend that calls its id-token
// helper before every backend call does. No token source makes warmpool
// fetch per request: New caches every source it is given (a *TokenCache as
// it is, any other in a new TokenCache), and a TokenCache fetches once per
// lifetime, or, when a refresh is due, once in the background while it serves
// the old token. So in this mode the warmpool modes get no token source, and
// every mode sets the Authorization header itself before sending; warmpool
// sends a caller's header unchanged. TokenCached fetches through a cache:
// warmpool modes through WithTokenSource, which caches; the other modes
// through one CachedTokenSource per client, shared by its workers. Either
// way a client fetches once per token lifetime, and each slice of a run has a
// new client.
//
// The fetch is part of the request: its time counts in the latency and in
// req/s. The report gives per mode the issuer's fetch count, the mean time of
// one fetch and the time spent fetching per request. What it costs, measured
// with "warmpool bench -proto http -modes per-request,warmpool -token-mode
// per-request" and then "-token-mode cached" (32 workers, 5s runs, 5ms per
// fetch, on a 2-CPU machine where issuer, server and clients share the CPUs,
// with a load average of about 1.3 from other work): warmpool made 2,330
// req/s at a p50 of 13.2ms fetching per request, and 10,561 req/s at a p50
// of 2.75ms with the cache (4.5× the throughput, a fifth of the p50); a
// fetch took 10.7ms on average, twice the issuer's delay, for its new
// connection on a busy machine.
//
// # Scenarios
//
// RunScenario (warmpool bench -scenario) measures graceful degradation
// instead of pooling: an in-process server of fixed capacity
// (internal/capserver: handler slots × service time behind a FIFO queue,
// executing every request it read even after its caller gave up, as uvicorn
// workers do) under an open-model load in phases, each call with its own
// deadline, which it states to the server (X-Bench-Deadline) so that the
// server counts the work it did for callers that had given up. The modes are
// tuned net/http, warmpool as configured and warmpool with the scenario's
// feature on (concurrency_limit: adaptive, circuit_breaker_failures,
// hedge_after); scenario.go says what each scenario does, and package
// report holds the results to issue 16's targets (report.FinishScenario).
//
// # Reports
//
// This package measures; package report (internal/bench/report) concludes
// and writes, reading only the exported report types, so each reads alone.
// Report is plain data with stable JSON names. report.Finish adds what
// follows from the figures: the ratios between modes, a verdict per
// protocol and one over all, hints when runs failed for a common cause (a
// server answering 401), and the definitions of every field; report's
// WriteJSON, WriteText (tables for people) and WriteHTML (a self-contained
// page with SVG charts) write it. A Run that its context stops returns the
// runs that finished, marked Partial.
//
// Every load, here and in "warmpool post -n" and "warmpool doctor", goes
// through internal/load: one loop, closed or open model, bounded in time
// and count.
package bench
