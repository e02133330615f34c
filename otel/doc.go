// Package warmpoolotel exports a warmpool.Client's pool and requests as
// OpenTelemetry metrics, through the metric API only: the program chooses the
// SDK, the exporter and the views. It is the only package of warmpool that
// imports OpenTelemetry, so programs that do not use it do not link it. The
// package is named warmpoolotel so that it does not clash with
// go.opentelemetry.io/otel in the files that import both.
//
// Like package prom, it takes figures from two places:
//
//   - Pool state and counters are read from (*warmpool.Client).Stats by one
//     callback when the SDK collects, so the request path carries nothing
//     beyond the client's own atomic counters (RegisterStats).
//   - Per-attempt durations, status codes and connection lifetimes come from
//     warmpool.Hooks, which a client takes only at construction (Hooks).
//
// That fixes the order of calls: create the Metrics, build the client with
// its hooks, then register the client's Stats, and unregister when the client
// is done with:
//
//	m, err := warmpoolotel.New(meterProvider) // nil: otel.GetMeterProvider()
//	...
//	client, err := warmpool.New(cfg, warmpool.WithHooks(m.Hooks()))
//	...
//	reg, err := m.RegisterStats(client)
//	...
//	defer reg.Unregister()
//	defer client.Close()
//
// A program that wants only the pool figures may skip Hooks; one that wants
// only the request histograms may skip RegisterStats. To export several
// clients, create one Metrics per client, each with WithAttributes naming it
// (for example attribute.String("warmpool.client", "billing")): without a
// distinguishing attribute their series would collide.
//
// # Instruments
//
// The meter is named "github.com/warmpool/warmpool/otel", with
// warmpool.Version as its version. Names, units and attributes of the http.*
// instruments follow the OpenTelemetry HTTP client semantic conventions;
// warmpool's own figures are under warmpool.*. Every instrument but the
// client-wide warmpool.retries, warmpool.retry.budget.refusals and
// warmpool.token.* has server.address and server.port, parsed from the
// dialed "host:port"; sum over them for the client's total.
//
// From Hooks, at the end of each attempt or connection:
//
//	http.client.request.duration     Float64Histogram    s             http.request.method, http.response.status_code, error.type
//	http.client.connection.duration  Float64Histogram    s             warmpool.close.reason
//
// From Stats, at each collection:
//
//	http.client.open_connections     Int64ObservableUpDownCounter  {connection}  http.connection.state = active|idle
//	http.client.active_requests      Int64ObservableUpDownCounter  {request}
//	warmpool.connections.dialing     Int64ObservableUpDownCounter  {connection}
//	warmpool.connections.created     Int64ObservableCounter        {connection}
//	warmpool.connections.closed      Int64ObservableCounter        {connection}  warmpool.close.reason
//	warmpool.dial.failures           Int64ObservableCounter        {dial}        warmpool.dial.failure.kind
//	warmpool.tls.handshakes          Int64ObservableCounter        {handshake}
//	warmpool.tls.handshake.duration  Float64ObservableCounter      s
//	warmpool.attempts                Int64ObservableCounter        {attempt}
//	warmpool.attempts.reused         Int64ObservableCounter        {attempt}
//	warmpool.pool.waiting            Int64ObservableUpDownCounter  {request}
//	warmpool.pool.waits              Int64ObservableCounter        {request}
//	warmpool.pool.wait.duration      Float64ObservableCounter      s
//	warmpool.pool.timeouts           Int64ObservableCounter        {request}
//	warmpool.retries                 Int64ObservableCounter        {retry}
//	warmpool.retry.budget.refusals   Int64ObservableCounter        {retry}
//	warmpool.token.fetches           Int64ObservableCounter        {fetch}
//	warmpool.token.fetch.failures    Int64ObservableCounter        {fetch}
//
// Attempts, not calls: as the semantic conventions ask, every attempt of a
// retried call is an HTTP request of its own, in http.client.request.duration
// as in warmpool.attempts (attempts that got a connection; Stats.Requests).
// Stats has no count of logical calls (Do or PostJSON, each counted once
// however many attempts); warmpool.retries is the difference for calls that
// got as far as a connection.
//
// http.request.method is one of the standard methods or "_OTHER", so a
// caller cannot multiply the series. http.response.status_code is set when a
// response arrived. error.type is set when the attempt failed: the status
// code as a string for a response of 400 or more (the semantic conventions
// count 4xx as failures on the client side), otherwise a short kind of the
// error — "pool_timeout", "timeout", "canceled", "connection_refused",
// "connection_reset", "connection_closed", "response_too_large",
// "client_closed" — or, failing those, the Go type of the error, such as
// "*net.OpError" or "*net.DNSError".
//
// The request duration histogram has the boundaries the conventions advise,
// from 5 ms to 10 s. Connections live longer, so the connection duration has
// boundaries from 10 ms to 300 s (the conventions advise none; these are
// those of ASP.NET Core's own http.*.connection.duration). A View in the SDK
// overrides either.
//
// http.client.active_requests is read from Stats.InFlight, not counted by
// hooks: warmpool.Hooks has no event when an attempt starts, only
// RequestDone, so a synchronous UpDownCounter could not be incremented at the
// right moment. The observed value is the same figure, without
// http.request.method (which the conventions only recommend).
//
// # Traces
//
// Spans are not made here: wrap the client's transport with otelhttp. Until
// warmpool can wrap each attempt, wrap the *http.Client of HTTPClient, whose
// transport runs the whole call, retries included; one span then covers a
// call rather than an attempt:
//
//	hc := *client.HTTPClient() // a copy: the client's own is shared
//	hc.Transport = otelhttp.NewTransport(hc.Transport)
package warmpoolotel
