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
//   - Errors by kind: timeout, conn, status, other (see classify).
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
// # Reports
//
// Report is plain data with stable JSON names (WriteJSON); WriteText prints
// tables for people, WriteHTML a self-contained page with SVG charts.
package bench
