package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"syscall"
	"time"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/loopback"
	"github.com/warmpool/warmpool/internal/redact"
	"github.com/warmpool/warmpool/internal/refserver"
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

// serveFlags are the settings of one "warmpool serve" run.
type serveFlags struct {
	opts        refserver.Options
	allowRemote bool
	loopback    bool // opts.Addr is a loopback address
	grace       time.Duration
	verbose     bool
	upstream    string // "" for none
	up          clientFlags
}

// runServe implements "warmpool serve".
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseServe(args, stdout)
	if err != nil {
		return err
	}
	level := slog.LevelWarn
	if f.verbose {
		level = slog.LevelDebug
	}
	// Warnings include http.Server's own messages, such as a TLS handshake
	// failing because the client does not trust the self-signed certificate.
	f.opts.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	served, client, err := wireMetrics(&f.opts, f.upstream, f.up, stderr)
	if err != nil {
		return err
	}
	if client != nil {
		defer client.Close()
	}
	srv, err := refserver.New(f.opts)
	if err != nil {
		return listenError(f.opts.Addr, err)
	}
	served.Store(srv)
	announce(stderr, f, srv, client)
	<-ctx.Done()
	return stopServing(stderr, f, srv, client)
}

func parseServe(args []string, stdout io.Writer) (serveFlags, error) {
	cmd := newCommand("serve", serveSynopsis, serveExamples)
	fs := cmd.fs
	var f serveFlags
	opts := &f.opts
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
	fs.BoolVar(&f.allowRemote, "allow-remote", false, "allow a non-loopback -addr (see above for why it is off)")
	fs.DurationVar(&f.grace, "shutdown-timeout", shutdownTimeout, "bound on the graceful shutdown; connections still busy then are dropped")
	fs.BoolVar(&f.verbose, "v", false, "log connection-level events (refused connections, failed upstream calls) besides warnings")
	fs.StringVar(&f.upstream, "upstream", "", "`URL` that each executed /answer POSTs its question to first, through a warmpool client")
	fs.StringVar(&f.up.configPath, "config", "", "with -upstream, YAML `file` with the upstream client's http_client and auth blocks")
	fs.StringVar(&f.up.token, "upstream-token", "", "with -upstream, bearer `token` to send upstream (default $WARMPOOL_UPSTREAM_TOKEN; none: the auth block of -config, or no Authorization)")
	fs.BoolVar(&f.up.insecure, "insecure", false, "with -upstream, skip TLS certificate verification of the upstream, for a self-signed test server")

	positional, err := cmd.parse(args, stdout)
	if err != nil {
		return f, err
	}
	if len(positional) > 0 {
		return f, usagef("serve", "unexpected arguments %q", positional)
	}
	if err := f.check(cmd); err != nil {
		return f, err
	}
	if opts.Token == "" {
		opts.Token = os.Getenv("WARMPOOL_TOKEN")
	}
	return f, nil
}

// check reports the first flag out of range, or used without the flag it
// needs, as a usage error.
func (f *serveFlags) check(cmd *command) error {
	opts := &f.opts
	switch opts.Proto {
	case "http", "tls", "tls-h1", "h2c":
	default:
		return usagef("serve", "-proto %q: want http, tls, tls-h1 or h2c", opts.Proto)
	}
	for _, c := range []struct {
		name string
		bad  bool
	}{
		{"-delay", opts.Delay < 0},
		{"-response-bytes", opts.ResponseBytes < 0},
		{"-idle-timeout", opts.IdleTimeout < 0},
		{"-max-conns", opts.MaxConns < 0},
		{"-max-requests-per-conn", opts.MaxRequestsPerConn < 0},
	} {
		if c.bad {
			return usagef("serve", "%s must not be negative", c.name)
		}
	}
	switch {
	case opts.ResetIdle && opts.IdleTimeout == 0 && opts.MaxRequestsPerConn == 0:
		return usagef("serve", "-reset needs -idle-timeout or -max-requests-per-conn: it changes how they close connections")
	case opts.KeepAliveTimeoutHeader && opts.IdleTimeout == 0:
		return usagef("serve", "-keepalive-header needs -idle-timeout: it advertises that timeout")
	case f.grace <= 0:
		return usagef("serve", "-shutdown-timeout must be positive")
	}
	if f.upstream == "" {
		for _, name := range []string{"config", "upstream-token", "insecure"} {
			if cmd.set(name) {
				return usagef("serve", "-%s needs -upstream", name)
			}
		}
	} else if u, err := url.Parse(f.upstream); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("serve", "-upstream %q: want an absolute http:// or https:// URL", redact.URL(f.upstream))
	}
	var err error
	if f.loopback, err = loopback.Addr(opts.Addr); err != nil {
		return usagef("serve", "-addr %q: %v", opts.Addr, err)
	}
	if !f.loopback && !f.allowRemote {
		return usagef("serve", "-addr %q is not a loopback address; pass -allow-remote to listen there anyway", opts.Addr)
	}
	return nil
}

// announce tells stderr where srv serves and what to know about it.
func announce(stderr io.Writer, f serveFlags, srv *refserver.Server, client *warmpool.Client) {
	fmt.Fprintf(stderr, "warmpool serve: serving on %s (proto %s; POST /answer, GET /healthz, GET /stats, GET /metrics, GET /debug/warmpool/)\n", srv.URL(), f.opts.Proto)
	if client != nil {
		fmt.Fprintf(stderr, "warmpool serve: each executed /answer calls %s first, through one warmpool client (max_connections %d)\n",
			redact.URL(f.upstream), client.Config().MaxConnections)
	}
	if f.opts.Token != "" {
		fmt.Fprintln(stderr, "warmpool serve: POST /answer requires the bearer token (from -token or $WARMPOOL_TOKEN)")
	}
	if srv.ClientTLSConfig() != nil {
		fmt.Fprintln(stderr, "warmpool serve: the TLS certificate is self-signed and made at start; clients must skip verification: warmpool post -insecure "+srv.URL()+"/answer")
	}
	if !f.loopback {
		fmt.Fprintln(stderr, "warmpool serve: warning: listening beyond loopback (-allow-remote)")
	}
}

// stopServing shuts srv down gracefully, within f.grace, then the upstream
// client if any, and tells stderr what they served.
func stopServing(stderr io.Writer, f serveFlags, srv *refserver.Server, client *warmpool.Client) error {
	fmt.Fprintf(stderr, "warmpool serve: shutting down (at most %s)\n", f.grace)
	sctx, cancel := context.WithTimeout(context.Background(), f.grace)
	defer cancel()
	var err error
	if err = srv.Shutdown(sctx); err != nil {
		err = errors.Join(fmt.Errorf("warmpool serve: graceful shutdown: %w; dropping the remaining connections", err), srv.Close())
	}
	st := srv.Stats()
	fmt.Fprintf(stderr, "warmpool serve: served %d requests on %d connections (peak %d open, %d refused)\n",
		st.Requests, st.Accepted, st.PeakOpen, st.Refused)
	if f.opts.IdleTimeout > 0 || f.opts.MaxRequestsPerConn > 0 {
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
