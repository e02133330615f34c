package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/redact"
)

const postSynopsis = `Usage: warmpool post URL [flags]

POST the JSON object -data to URL through one pooled warmpool client, with the
bearer token from -token, $WARMPOOL_TOKEN or the auth: block of -config (never
printed), and print the JSON
answer to stdout: indented with -format text, as received with -format json.
A non-2xx answer is an error (exit status 1).

With -n, send N requests over -c workers sharing the one client, bounded by N
and by -timeout in all, and print a summary instead of the answers: requests,
errors by kind, req/s, p50/p99 latency, the client's pool figures
(connections created, reuse rate, open and idle at the end, pool timeouts),
and the pool doctor's findings, each with its fix, or "doctor: no findings
(pool healthy)"; -format json gives them as a "findings" array. Any failed
request makes the exit status 1; an example error of each kind goes to
stderr. Findings do not change the exit status: "warmpool doctor" does that.
-pause makes each worker wait between its requests, leaving its connection
idle, as traffic with gaps does.

The client's settings come from the http_client block of -config and the
WARMPOOL_* variables (WARMPOOL_MAX_CONNECTIONS, WARMPOOL_POOL_TIMEOUT, ...).
`

const postExamples = `Examples:
  warmpool post http://127.0.0.1:8080/answer -data '{"question":"why?"}'
  WARMPOOL_TOKEN=s3cret warmpool post https://127.0.0.1:8443/answer -insecure
  warmpool post http://127.0.0.1:8080/answer -n 200 -c 8
  WARMPOOL_MAX_CONNECTIONS=2 warmpool post http://127.0.0.1:8080/answer?delay=20ms -n 100 -c 10 -format json
`

// postFlags are the settings of one "warmpool post" or "warmpool doctor" run.
type postFlags struct {
	url        string
	data       json.RawMessage
	dataArg    string // -data as given: JSON, or @file
	configPath string
	token      string
	insecure   bool
	n, c       int
	pause      time.Duration
	timeout    time.Duration
	format     string
}

// runPost implements "warmpool post".
func runPost(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parsePost(args, stdout)
	if err != nil {
		return err
	}
	client, err := newClient("post", clientFlags{f.configPath, f.token, f.insecure}, stderr)
	if err != nil {
		return err
	}
	defer client.Close()

	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	if f.n == 0 {
		if err := postOnce(ctx, client, f, stdout); err != nil {
			return &cmdError{cmd: "post", msg: explain(ctx, err, f.timeout), err: err}
		}
		return nil
	}
	s := runLoad(ctx, "post", client, f, stderr)
	if err := writeSummary(stdout, s, f.format, false); err != nil {
		return err
	}
	return s.failure("post")
}

func parsePost(args []string, stdout io.Writer) (postFlags, error) {
	cmd := newCommand("post", postSynopsis, postExamples)
	var f postFlags
	f.define(cmd.fs)
	cmd.fs.IntVar(&f.n, "n", 0, "send `N` requests and print a summary instead of the answer")
	cmd.fs.IntVar(&f.c, "c", 1, "with -n, the number of concurrent workers")
	if err := f.parse(cmd, args, stdout); err != nil {
		return f, err
	}
	switch {
	case f.n < 0:
		return f, usagef("post", "-n must not be negative")
	case cmd.set("c") && f.n == 0:
		return f, usagef("post", "-c needs -n")
	case cmd.set("pause") && f.n == 0:
		return f, usagef("post", "-pause needs -n")
	}
	f.c = min(f.c, max(f.n, 1))
	return f, nil
}

// define registers on fs the flags that post and doctor share; each
// registers its own -n and -c, whose defaults and meaning differ.
func (f *postFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&f.dataArg, "data", "{}", "the `JSON` object to send; @file reads it from file")
	fs.StringVar(&f.configPath, "config", "", "YAML `file` with an http_client block of client settings")
	fs.StringVar(&f.token, "token", "", "bearer `token` (default $WARMPOOL_TOKEN; none: no Authorization). Prefer the variable: flags show in ps")
	fs.BoolVar(&f.insecure, "insecure", false, "skip TLS certificate verification, for a self-signed test server (warmpool serve -proto tls)")
	fs.DurationVar(&f.pause, "pause", 0, "how long each worker waits between its requests, leaving its connection idle (0: no wait)")
	fs.DurationVar(&f.timeout, "timeout", 60*time.Second, "bound on the whole run")
	fs.StringVar(&f.format, "format", "text", "output format: text or json")
}

// parse parses args for cmd, whose flags define registered, and checks what
// post and doctor share: one absolute URL, valid -data, and the ranges of
// the shared flags and of -c.
func (f *postFlags) parse(cmd *command, args []string, stdout io.Writer) error {
	positional, err := cmd.parse(args, stdout)
	if err != nil {
		return err
	}
	switch len(positional) {
	case 0:
		return usagef(cmd.name, "missing URL")
	case 1:
		f.url = positional[0]
	default:
		return usagef(cmd.name, "want one URL, got %d arguments", len(positional))
	}
	if err := checkURL(f.url); err != nil {
		return &usageError{cmd: cmd.name, err: err}
	}
	raw := []byte(f.dataArg)
	if name, ok := strings.CutPrefix(f.dataArg, "@"); ok {
		if raw, err = os.ReadFile(name); err != nil {
			return usagef(cmd.name, "-data: %v", err)
		}
	}
	if !json.Valid(raw) {
		return usagef(cmd.name, "-data is not valid JSON")
	}
	f.data = raw
	switch {
	case f.c < 1:
		return usagef(cmd.name, "-c must be at least 1")
	case f.pause < 0:
		return usagef(cmd.name, "-pause must not be negative")
	case f.timeout <= 0:
		return usagef(cmd.name, "-timeout must be positive")
	case f.format != "text" && f.format != "json":
		return usagef(cmd.name, "-format %q: want text or json", f.format)
	}
	if f.token == "" {
		f.token = os.Getenv("WARMPOOL_TOKEN")
	}
	return nil
}

// clientFlags are the flags that build a client: post's and doctor's, and
// serve's for its upstream.
type clientFlags struct {
	configPath string // http_client and auth blocks; "" for none
	token      string // a static bearer token; "" leaves the auth block to decide
	insecure   bool
}

// newClient builds the one client of a run of cmd, from -config and the
// WARMPOOL_* variables. A bad configuration is a usage error.
func newClient(cmd string, f clientFlags, stderr io.Writer, opts ...warmpool.Option) (*warmpool.Client, error) {
	cfg, err := warmpool.LoadConfig(f.configPath)
	if err != nil {
		return nil, &usageError{cmd: cmd, err: err}
	}
	if f.token != "" {
		opts = append(opts, warmpool.WithTokenSource(warmpool.StaticToken(f.token)))
	}
	if f.insecure {
		opts = append(opts, warmpool.WithTLSConfig(&tls.Config{InsecureSkipVerify: true}))
		fmt.Fprintf(stderr, "warmpool %s: -insecure: not verifying the TLS certificate of the server it calls; use it only against a test server\n", cmd)
	}
	client, err := warmpool.New(cfg, opts...)
	if err != nil {
		return nil, &usageError{cmd: cmd, err: err}
	}
	return client, nil
}

// postOnce sends one request and prints the answer.
func postOnce(ctx context.Context, client *warmpool.Client, f postFlags, stdout io.Writer) error {
	var answer json.RawMessage
	if err := client.PostJSON(ctx, f.url, f.data, &answer); err != nil {
		return err
	}
	// PostJSON checked the answer is JSON.
	var b bytes.Buffer
	if f.format == "text" {
		if err := json.Indent(&b, answer, "", "  "); err != nil {
			return err // unreachable
		}
	} else {
		b.Write(answer)
	}
	b.WriteByte('\n')
	_, err := stdout.Write(b.Bytes())
	return err
}

// cmdError is a subcommand's failed job: "warmpool <cmd>: <msg>", one
// prefix, msg saying what failed; it wraps the cause for errors.Is and As.
type cmdError struct {
	cmd, msg string
	err      error
}

func (e *cmdError) Error() string { return "warmpool " + e.cmd + ": " + e.msg }
func (e *cmdError) Unwrap() error { return e.err }

// explain says what a failed request's err means, for "warmpool <cmd>: ":
// the library's message once (errorText), "no answer within -timeout" when
// the run's -timeout (ctx's deadline) cut it, and a hint for a common cause.
func explain(ctx context.Context, err error, timeout time.Duration) string {
	msg := errorText(err)
	if errors.Is(err, context.DeadlineExceeded) && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		msg = fmt.Sprintf("no answer within -timeout %v: %s", timeout, msg)
	}
	if se, ok := errors.AsType[*warmpool.StatusError](err); ok && se.StatusCode == http.StatusUnauthorized {
		msg += " (the server wants a bearer token: give it with -token, $WARMPOOL_TOKEN or the auth: block of -config)"
	}
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		msg += " (a test server with a self-signed certificate, such as warmpool serve -proto tls, needs -insecure)"
	}
	return msg
}

// errorText is err's message without the prefixes that would repeat the
// one "warmpool <cmd>: " adds: a *url.Error's `Post "URL": ` becomes
// "POST URL: " (URL redacted), and the "warmpool: " the library starts its
// messages with goes. This is the one place that reads error text: the
// prefix is a convention of the library's messages, not a value to test.
func errorText(err error) string {
	if ue, ok := err.(*url.Error); ok {
		return strings.ToUpper(ue.Op) + " " + redact.URL(ue.URL) + ": " + errorText(ue.Err)
	}
	msg, _ := strings.CutPrefix(err.Error(), "warmpool: ")
	return msg
}

// checkURL says why raw is not an absolute http:// or https:// URL with a
// host, and how to fix it when the fix is plain; nil if it is one. The
// input is echoed without query or user info, which may hold credentials.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		return nil
	}
	shown := shownInput(raw)
	if !strings.Contains(raw, "://") && !strings.HasPrefix(raw, "/") {
		if v, err := url.Parse("http://" + raw); err == nil && v.Host != "" {
			return fmt.Errorf("%q is not a URL: add the scheme, such as http://%s", shown, shown)
		}
	}
	if err == nil && u.Scheme != "" && u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q is not an http:// or https:// URL", shown)
	}
	return fmt.Errorf("%q is not an absolute URL: want a scheme and a host, such as http://127.0.0.1:8080/answer", shown)
}

// shownInput is raw as typed, without query, fragment or user info, even
// when it does not parse as a URL.
func shownInput(raw string) string {
	s, _, _ := strings.Cut(raw, "?")
	s, _, _ = strings.Cut(s, "#")
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		scheme, rest = "", s
	} else {
		scheme += "://"
	}
	host, path, slash := strings.Cut(rest, "/")
	if i := strings.LastIndex(host, "@"); i >= 0 {
		host = host[i+1:]
	}
	if slash {
		path = "/" + path
	}
	return scheme + host + path
}
