package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/loopback"
	"github.com/warmpool/warmpool/internal/refserver"
	"github.com/warmpool/warmpool/prom"
)

const serveSynopsis = `Usage: warmpool serve [flags]

Run the reference backend until interrupted (SIGINT or SIGTERM), then shut it
down gracefully: stop accepting, let requests in flight finish (at most
-shutdown-timeout), close the connections. It serves
  POST /answer   the JSON answer; knobs ?status= ?delay= ?size= ?ctype=html
                 ?retry_after= ?close=1 inject faults into one request
  GET  /healthz  "ok"
  GET  /stats    the server's counters as JSON: connections accepted, open,
                 peak open, requests, executions...
  GET  /metrics  the same connection counts for Prometheus
                 (warmpool_server_*), and with -upstream the upstream
                 client's pool metrics (warmpool_*)
  GET  /debug/warmpool/  the live pool page of the -upstream client
                 (open it in a browser; its JSON is stats.json below it)
Its connection counts are the server's view, the fair measure of a pooling
client. It prints "serving on URL" to stderr; nothing goes to stdout.

With -upstream URL it plays a backend that calls another service: each
executed POST /answer first POSTs {"question": <its question>} to URL through
one warmpool client, built as "warmpool post" builds it (the http_client and
auth blocks of -config, the WARMPOOL_* variables), with the bearer token of
-upstream-token or $WARMPOOL_UPSTREAM_TOKEN if given, and discards the
answer. If that call fails, /answer answers 502 with its error. The client's
pool is in GET /metrics; at exit its totals and the pool doctor's findings
go to stderr.

It listens on loopback only unless -allow-remote is given: it is a test
backend, with no access control beyond an optional static token, a throwaway
self-signed certificate, and knobs that make it sleep or send up to 64 MiB per
request on anyone's behalf.

It can end keep-alive connections the way production servers do, so a
client's pool meets their failures on the bench: -idle-timeout closes a
connection idle that long (uvicorn closes after 5s; on HTTP/1.1 exactly then,
even as the client is about to reuse it; on HTTP/2 with a GOAWAY first);
-max-requests-per-conn N ends it after N requests (nginx keepalive_requests:
"Connection: close" on the Nth HTTP/1.1 answer, a graceful GOAWAY on HTTP/2);
-reset makes those closes a TCP RST (ECONNRESET) instead of a FIN, as a load
balancer's are; -keepalive-header advertises the idle timeout in
"Keep-Alive: timeout=N". GET /stats counts them: closed_idle,
closed_max_requests, closed_reset, goaways, conn_requests_max.

With -proto tls or tls-h1 the certificate is self-signed, generated at start,
valid for 127.0.0.1, ::1 and localhost for 24 hours: clients must skip
verification ("warmpool post -insecure", "warmpool bench -insecure").
`

const serveExamples = `Examples:
  warmpool serve
  warmpool serve -addr 127.0.0.1:8443 -proto tls -delay 5ms
  WARMPOOL_TOKEN=s3cret warmpool serve -max-conns 10
  warmpool serve -idle-timeout 5s -keepalive-header        # like uvicorn
  warmpool serve -proto tls -max-requests-per-conn 1000    # like nginx
  warmpool serve -idle-timeout 300ms -reset                # RST idle connections
  curl -s http://127.0.0.1:8080/stats
  warmpool serve -addr 127.0.0.1:8081 -upstream http://127.0.0.1:8080/answer
  curl -s http://127.0.0.1:8081/metrics | grep warmpool_
`

// shutdownTimeout is the default bound on the graceful shutdown.
const shutdownTimeout = 10 * time.Second

// runServe implements "warmpool serve".
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := newCommand("serve", serveSynopsis, serveExamples)
	fs := cmd.fs
	var opts refserver.Options
	fs.StringVar(&opts.Addr, "addr", "127.0.0.1:8080", "listen `address`; port 0 picks a free port")
	fs.StringVar(&opts.Proto, "proto", "http", "wire protocol: http (HTTP/1.1), tls (h2 and HTTP/1.1 by ALPN), tls-h1, or h2c (cleartext HTTP/2 by prior knowledge, and HTTP/1.1)")
	fs.StringVar(&opts.Token, "token", "", "bearer `token` that POST /answer requires (default $WARMPOOL_TOKEN; none: no auth). Prefer the variable: flags show in ps")
	fs.DurationVar(&opts.Delay, "delay", 0, "service time added to every /answer")
	fs.IntVar(&opts.ResponseBytes, "response-bytes", refserver.DefaultResponseBytes, "size of the /answer body in `bytes`")
	fs.DurationVar(&opts.IdleTimeout, "idle-timeout", 0, "close connections idle this long, as uvicorn does after 5s (HTTP/2: GOAWAY first; 0: never)")
	fs.IntVar(&opts.MaxRequestsPerConn, "max-requests-per-conn", 0, "end a connection after `N` requests, as nginx keepalive_requests does (HTTP/2: graceful GOAWAY; 0: no limit)")
	fs.BoolVar(&opts.ResetIdle, "reset", false, "close the connections that -idle-timeout and -max-requests-per-conn end with a TCP RST instead of a FIN")
	fs.BoolVar(&opts.KeepAliveTimeoutHeader, "keepalive-header", false, "with -idle-timeout, send \"Keep-Alive: timeout=N\" (whole seconds) on HTTP/1.1 answers")
	fs.IntVar(&opts.MaxConns, "max-conns", 0, "refuse connections beyond this many open at once (0: no limit)")
	allowRemote := fs.Bool("allow-remote", false, "allow a non-loopback -addr (see above for why it is off)")
	grace := fs.Duration("shutdown-timeout", shutdownTimeout, "bound on the graceful shutdown; connections still busy then are dropped")
	verbose := fs.Bool("v", false, "log connection-level events (refused connections, failed upstream calls) besides warnings")
	upstream := fs.String("upstream", "", "`URL` that each executed /answer POSTs its question to first, through a warmpool client")
	var up clientFlags
	fs.StringVar(&up.configPath, "config", "", "with -upstream, YAML `file` with the upstream client's http_client and auth blocks")
	fs.StringVar(&up.token, "upstream-token", "", "with -upstream, bearer `token` to send upstream (default $WARMPOOL_UPSTREAM_TOKEN; none: the auth block of -config, or no Authorization)")
	fs.BoolVar(&up.insecure, "insecure", false, "with -upstream, skip TLS certificate verification of the upstream, for a self-signed test server")

	positional, err := cmd.parse(args, stdout)
	if err != nil {
		return err
	}
	if len(positional) > 0 {
		return usagef("serve", "unexpected arguments %q", positional)
	}
	switch opts.Proto {
	case "http", "tls", "tls-h1", "h2c":
	default:
		return usagef("serve", "-proto %q: want http, tls, tls-h1 or h2c", opts.Proto)
	}
	for _, f := range []struct {
		name string
		bad  bool
	}{
		{"-delay", opts.Delay < 0},
		{"-response-bytes", opts.ResponseBytes < 0},
		{"-idle-timeout", opts.IdleTimeout < 0},
		{"-max-conns", opts.MaxConns < 0},
		{"-max-requests-per-conn", opts.MaxRequestsPerConn < 0},
	} {
		if f.bad {
			return usagef("serve", "%s must not be negative", f.name)
		}
	}
	if opts.ResetIdle && opts.IdleTimeout == 0 && opts.MaxRequestsPerConn == 0 {
		return usagef("serve", "-reset needs -idle-timeout or -max-requests-per-conn: it changes how they close connections")
	}
	if opts.KeepAliveTimeoutHeader && opts.IdleTimeout == 0 {
		return usagef("serve", "-keepalive-header needs -idle-timeout: it advertises that timeout")
	}
	if *grace <= 0 {
		return usagef("serve", "-shutdown-timeout must be positive")
	}
	if *upstream == "" {
		for _, name := range []string{"config", "upstream-token", "insecure"} {
			if cmd.set(name) {
				return usagef("serve", "-%s needs -upstream", name)
			}
		}
	} else if u, err := url.Parse(*upstream); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("serve", "-upstream %q: want an absolute http:// or https:// URL", redact(*upstream))
	}
	loopback, err := loopback.Addr(opts.Addr)
	if err != nil {
		return usagef("serve", "-addr %q: %v", opts.Addr, err)
	}
	if !loopback && !*allowRemote {
		return usagef("serve", "-addr %q is not a loopback address; pass -allow-remote to listen there anyway", opts.Addr)
	}
	if opts.Token == "" {
		opts.Token = os.Getenv("WARMPOOL_TOKEN")
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	// Warnings include http.Server's own messages, such as a TLS handshake
	// failing because the client does not trust the self-signed certificate.
	opts.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	served, client, err := wireMetrics(&opts, *upstream, up, stderr)
	if err != nil {
		return err
	}
	if client != nil {
		defer client.Close()
	}

	srv, err := refserver.New(opts)
	if err != nil {
		return listenError(opts.Addr, err)
	}
	served.Store(srv)
	fmt.Fprintf(stderr, "warmpool serve: serving on %s (proto %s; POST /answer, GET /healthz, GET /stats, GET /metrics, GET /debug/warmpool/)\n", srv.URL(), opts.Proto)
	if client != nil {
		fmt.Fprintf(stderr, "warmpool serve: each executed /answer calls %s first, through one warmpool client (max_connections %d)\n",
			redact(*upstream), client.Config().MaxConnections)
	}
	if opts.Token != "" {
		fmt.Fprintln(stderr, "warmpool serve: POST /answer requires the bearer token (from -token or $WARMPOOL_TOKEN)")
	}
	if srv.ClientTLSConfig() != nil {
		fmt.Fprintln(stderr, "warmpool serve: the TLS certificate is self-signed and made at start; clients must skip verification: warmpool post -insecure "+srv.URL()+"/answer")
	}
	if !loopback {
		fmt.Fprintln(stderr, "warmpool serve: warning: listening beyond loopback (-allow-remote)")
	}

	<-ctx.Done()
	fmt.Fprintf(stderr, "warmpool serve: shutting down (at most %s)\n", *grace)
	sctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	if err = srv.Shutdown(sctx); err != nil {
		err = errors.Join(fmt.Errorf("warmpool serve: graceful shutdown: %w; dropping the remaining connections", err), srv.Close())
	}
	st := srv.Stats()
	fmt.Fprintf(stderr, "warmpool serve: served %d requests on %d connections (peak %d open, %d refused)\n",
		st.Requests, st.Accepted, st.PeakOpen, st.Refused)
	if opts.IdleTimeout > 0 || opts.MaxRequestsPerConn > 0 {
		fmt.Fprintf(stderr, "warmpool serve: closed %d idle connections and %d at max requests (%d GOAWAYs, %d with an RST)\n",
			st.ClosedIdle, st.ClosedMaxRequests, st.GoAways, st.ClosedReset)
	}
	if client != nil {
		// The server has stopped, so no request can start upstream now; let
		// those of handlers cut short by a forced close finish or fail.
		if cerr := client.Shutdown(sctx); cerr != nil {
			err = errors.Join(err, fmt.Errorf("warmpool serve: upstream client: %w", cerr))
		}
		reportUpstream(stderr, client)
	}
	return err
}

// listenError explains why the server could not start, in the words of the
// command line rather than of the package that failed: a busy port names the
// address and the two ways out.
func listenError(addr string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("warmpool serve: %s is already in use; pick another with -addr 127.0.0.1:0 or stop the other process", addr)
	}
	if oe, ok := errors.AsType[*net.OpError](err); ok && oe.Op == "listen" {
		return fmt.Errorf("warmpool serve: cannot listen on %s: %w", addr, oe.Err)
	}
	return fmt.Errorf("warmpool serve: %w", err)
}

// wireMetrics sets opts.Routes to serve GET /metrics and the pool page
// (GET /debug/warmpool/) and, with an upstream URL, opts.Upstream to call it
// through a new client, which it returns
// (nil without upstream). The metrics read the server's counters once it is
// stored in served; until then they read zeros, as the route must exist
// before the server does.
func wireMetrics(opts *refserver.Options, upstream string, up clientFlags, stderr io.Writer) (served *atomic.Pointer[refserver.Server], client *warmpool.Client, err error) {
	served = new(atomic.Pointer[refserver.Server])
	serverMetrics := prom.NewServerCollector(func() prom.ServerStats {
		srv := served.Load()
		if srv == nil {
			return prom.ServerStats{}
		}
		st := srv.Stats()
		return prom.ServerStats{Accepted: st.Accepted, Open: st.Open, PeakOpen: st.PeakOpen, Closed: st.Closed,
			Refused: st.Refused, Requests: st.Requests, InFlight: st.InFlight}
	})
	metrics := prom.Handler(serverMetrics)
	var pooled []*warmpool.Client // on the pool page
	if upstream != "" {
		if up.token == "" {
			up.token = os.Getenv("WARMPOOL_UPSTREAM_TOKEN")
		}
		reqs := prom.NewRequestCollector()
		if client, err = newClient("serve", up, stderr, warmpool.WithHooks(reqs.Hooks())); err != nil {
			return nil, nil, err
		}
		opts.Upstream = upstreamCall(client, upstream, opts.Logger)
		metrics = prom.Handler(serverMetrics, prom.NewCollector(client), reqs)
		pooled = append(pooled, client)
	}
	opts.Routes = map[string]http.Handler{"GET /metrics": metrics, "GET /debug/warmpool/": warmpool.DebugHandler(pooled...)}
	return served, client, nil
}

// upstreamQuestion is the body serve -upstream sends.
type upstreamQuestion struct {
	Question json.RawMessage `json:"question"` // null when /answer got none
}

// upstreamCall returns the refserver Upstream function of serve -upstream:
// it POSTs the question to url through client and discards the answer.
func upstreamCall(client *warmpool.Client, url string, log *slog.Logger) func(context.Context, json.RawMessage) error {
	return func(ctx context.Context, question json.RawMessage) error {
		err := client.PostJSON(ctx, url, upstreamQuestion{question}, nil)
		if err != nil && ctx.Err() == nil {
			log.Debug("upstream call failed", "err", err)
		}
		return err
	}
}

// reportUpstream tells stderr how the upstream client's pool fared.
func reportUpstream(stderr io.Writer, client *warmpool.Client) {
	st := client.Stats()
	fmt.Fprintf(stderr, "warmpool serve: upstream: %d requests on %d connections (reuse rate %.1f%%, %d pool timeouts)\n",
		st.Requests, st.Created, 100*st.ReuseRate(), st.PoolTimeouts)
	for _, f := range warmpool.Diagnose(st, client.Config()) {
		fmt.Fprintf(stderr, "warmpool serve: upstream pool: %s\n", f)
	}
}
