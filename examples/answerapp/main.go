// Command answerapp is the brief's system, in Go, on warmpool: a frontend
// with a question form posting each question with a bearer ID token to the
// backend's POST /answer, a backend that calls an external API for the
// answer, and that external API (a stub). Each service holds one shared,
// pooled warmpool client, made at start and closed at shutdown, logs
// "HTTP client stats", and shows its pool live at /debug/warmpool/.
//
//	go run ./examples/answerapp
//
// starts all three on free loopback ports (in one process, each with its
// own server and client) and prints the frontend's and the backend's URLs.
// Ctrl-C (SIGINT) or SIGTERM shuts them down in order, frontend first,
// letting requests in flight finish, and logs each client's final stats.
//
// The frontend's client comes from config.yaml (the brief's http_client
// block, verbatim) and WARMPOOL_* variables; the backend's takes the
// brief's backend values.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/examples/answerapp/backend"
	"github.com/warmpool/warmpool/examples/answerapp/externalapi"
	"github.com/warmpool/warmpool/examples/answerapp/frontend"
	"github.com/warmpool/warmpool/examples/answerapp/idtoken"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "answerapp:", err)
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	config                  string
	frontend, back, extAddr string
	statsInterval           time.Duration
	externalDelay           time.Duration
	grace                   time.Duration
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("answerapp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.config, "config", "", "YAML `file` with the frontend client's http_client block (default: config.yaml here or in examples/answerapp)")
	fs.StringVar(&o.frontend, "frontend", "127.0.0.1:0", "the frontend's listen `address`")
	fs.StringVar(&o.back, "backend", "127.0.0.1:0", "the backend's listen `address`")
	fs.StringVar(&o.extAddr, "external", "127.0.0.1:0", "the external API stub's listen `address`")
	fs.DurationVar(&o.statsInterval, "stats-interval", 30*time.Second, "log each client's \"HTTP client stats\" this often (0: only at shutdown)")
	fs.DurationVar(&o.externalDelay, "external-delay", 5*time.Millisecond, "the external API's service time per answer")
	fs.DurationVar(&o.grace, "shutdown-timeout", 10*time.Second, "bound on the graceful shutdown")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	a, err := startApp(o, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "frontend  %s/   ask a question here; its pool: %s/debug/warmpool/\n", a.front.URL(), a.front.URL())
	fmt.Fprintf(stdout, "backend   %s/answer   its pool: %s/debug/warmpool/\n", a.back.URL(), a.back.URL())
	fmt.Fprintln(stdout, "Ctrl-C stops all three.")
	<-ctx.Done()
	log.Info("shutting down", "timeout", o.grace)
	sctx, cancel := context.WithTimeout(context.Background(), o.grace)
	defer cancel()
	return a.shutdown(sctx)
}

// configPath is -config, or config.yaml beside this file as go run or go
// test finds it.
func configPath(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	for _, p := range []string{"config.yaml", "examples/answerapp/config.yaml"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no config.yaml here or in examples/answerapp: give one with -config")
}

// app is the three services.
type app struct {
	ext    *externalapi.Server
	back   *backend.Server
	front  *frontend.Server
	issuer *idtoken.Issuer
}

// audience is what the frontend's ID tokens are for: the backend.
const audience = "answer-backend"

// startApp starts the external API, then the backend, then the frontend.
func startApp(o options, log *slog.Logger) (*app, error) {
	path, err := configPath(o.config)
	if err != nil {
		return nil, err
	}
	cfg, err := warmpool.LoadConfig(path)
	if err != nil {
		return nil, err
	}
	a := &app{}
	if a.issuer, err = idtoken.NewIssuer(idtoken.NewKey()); err != nil {
		return nil, err
	}
	a.ext, err = externalapi.Start(externalapi.Config{Addr: o.extAddr, Delay: o.externalDelay, Logger: log.With("service", "external-api")})
	if err != nil {
		return nil, err
	}
	a.back, err = backend.Start(backend.Config{Addr: o.back, ExternalURL: a.ext.URL(), Issuer: a.issuer, Audience: audience,
		StatsInterval: o.statsInterval, Logger: log.With("service", "backend")})
	if err != nil {
		return nil, errors.Join(err, a.shutdown(context.Background()))
	}
	a.front, err = frontend.Start(frontend.Config{Addr: o.frontend, BackendURL: a.back.URL(), Client: cfg,
		Tokens: a.issuer.Source(audience, time.Hour), StatsInterval: o.statsInterval, Logger: log.With("service", "frontend")})
	if err != nil {
		return nil, errors.Join(err, a.shutdown(context.Background()))
	}
	log.Info("started", "frontend", a.front.URL(), "backend", a.back.URL(), "external_api", a.ext.URL(), "config", path)
	return a, nil
}

// shutdown stops the services in the order of the calls between them,
// frontend first, so that each one's requests in flight still find the
// next one up.
func (a *app) shutdown(ctx context.Context) error {
	var err error
	if a.front != nil {
		err = errors.Join(err, a.front.Shutdown(ctx))
	}
	if a.back != nil {
		err = errors.Join(err, a.back.Shutdown(ctx))
	}
	if a.ext != nil {
		err = errors.Join(err, a.ext.Shutdown(ctx))
	}
	return err
}
