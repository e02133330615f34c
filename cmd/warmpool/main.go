// Command warmpool runs warmpool's reference backend, sends requests through a
// pooled warmpool client, diagnoses that client's pool, and benchmarks it. Run "warmpool -h" for the list of
// subcommands.
//
// Data (answers, summaries) goes to stdout; progress, notes and errors go to
// stderr. The exit status is 0 on success, 1 when the job failed and 2 for bad
// usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/warmpool/warmpool"
	_ "github.com/warmpool/warmpool/gcp" // auth type gcp in -config files
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, restore the default handling: a second
		// one kills the process without waiting for a graceful shutdown.
		<-ctx.Done()
		stop()
	}()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	report(os.Stderr, err)
	os.Exit(exitCode(err))
}

const topUsage = `warmpool: a pooled, authenticated HTTP client for service-to-service calls,
and the tools to see its pool at work.

Usage:
  warmpool <command> [flags] [arguments]

Commands:
  serve     run the reference backend on 127.0.0.1 until interrupted
  post      POST JSON through one pooled client; with -n, a small load run and pool summary
  doctor    run a bounded load through one client and diagnose its pool: findings with their fix
  bench     compare warmpool with plain net/http clients under the same load
  version   print the version of this binary
  help      show the help of a command ("warmpool help post")

Examples:
  warmpool serve -addr 127.0.0.1:8080
  warmpool post http://127.0.0.1:8080/answer -data '{"question":"why?"}'
  warmpool post http://127.0.0.1:8080/answer -n 200 -c 8
  warmpool doctor http://127.0.0.1:8080/answer -config client.yaml
  WARMPOOL_TOKEN=s3cret warmpool post https://127.0.0.1:8443/answer -insecure

Run "warmpool <command> -h" for the flags of a command.
Exit status: 0 ok, 1 the job failed (doctor: a finding of severity error), 2 bad usage.
`

// run is the whole program but for the process: it parses args (without the
// program name), does the job and returns its error. ctx ends on SIGINT or
// SIGTERM. It writes data to stdout and everything else to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, topUsage)
		return &usageError{err: errors.New("no command given")}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, stdout, stderr)
	case "post":
		return runPost(ctx, rest, stdout, stderr)
	case "doctor":
		return runDoctor(ctx, rest, stdout, stderr)
	case "bench":
		return runBench(ctx, rest, stdout, stderr)
	case "version":
		if len(rest) > 0 {
			return &usageError{cmd: cmd, err: fmt.Errorf("unexpected arguments %q", rest)}
		}
		fmt.Fprintln(stdout, "warmpool", warmpool.BuildVersion())
		return nil
	case "help", "-h", "-help", "--help":
		if cmd != "help" || len(rest) == 0 {
			fmt.Fprint(stdout, topUsage)
			return nil
		}
		if len(rest) > 1 {
			return &usageError{cmd: cmd, err: fmt.Errorf("want one command, got %q", rest)}
		}
		switch rest[0] {
		case "serve", "post", "doctor", "bench":
			// Each subcommand prints its own help for -h; that is a success here.
			if err := run(ctx, []string{rest[0], "-h"}, stdout, stderr); !errors.Is(err, flag.ErrHelp) {
				return err
			}
			return nil
		case "version", "help":
			fmt.Fprint(stdout, topUsage)
			return nil
		}
		return &usageError{err: fmt.Errorf("unknown command %q", rest[0])}
	}
	return &usageError{err: fmt.Errorf("unknown command %q", cmd)}
}

// usageError is a bad invocation: an unknown command or flag, a missing or
// malformed argument, a bad configuration. It maps to exit status 2.
type usageError struct {
	cmd string // the subcommand, "" for the top level
	err error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usagef returns a *usageError for the subcommand cmd.
func usagef(cmd, format string, args ...any) error {
	return &usageError{cmd: cmd, err: fmt.Errorf(format, args...)}
}

// exitCode maps run's error to the process exit status: 0 for success and for
// requested help, 2 for bad usage, 1 for everything else.
func exitCode(err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if _, ok := errors.AsType[*usageError](err); ok {
		return 2
	}
	return 1
}

// report writes run's error to w: a usage error with a pointer to the help,
// any other error as it is (library errors already start with "warmpool:").
func report(w io.Writer, err error) {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return
	}
	if ue, ok := errors.AsType[*usageError](err); ok {
		name := "warmpool"
		if ue.cmd != "" {
			name += " " + ue.cmd
		}
		fmt.Fprintf(w, "%s: %v\nRun '%s -h' for usage.\n", name, ue.err, name)
		return
	}
	fmt.Fprintln(w, err)
}

// command is one subcommand's flags and help.
type command struct {
	name     string // "post"
	synopsis string // the usage line(s) and a paragraph on what it does
	examples string // "Examples:\n  warmpool ...\n"
	fs       *flag.FlagSet
}

// newCommand makes a command whose FlagSet reports nothing itself: parse turns
// its errors into *usageError and prints the help on -h.
func newCommand(name, synopsis, examples string) *command {
	fs := flag.NewFlagSet("warmpool "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &command{name: name, synopsis: synopsis, examples: examples, fs: fs}
}

// parse parses args and returns the positional arguments. Flags may follow
// positional arguments ("post URL -n 10"), as in most CLIs but unlike the flag
// package alone; "--" ends the flags. On -h it writes the help to stdout and
// returns flag.ErrHelp.
func (c *command) parse(args []string, stdout io.Writer) ([]string, error) {
	var positional []string
	for {
		err := c.fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			c.help(stdout)
			return nil, err
		}
		if err != nil {
			return nil, &usageError{cmd: c.name, err: err}
		}
		rest := c.fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

func (c *command) help(w io.Writer) {
	fmt.Fprintf(w, "%s\nFlags:\n", c.synopsis)
	c.fs.SetOutput(w)
	c.fs.PrintDefaults()
	c.fs.SetOutput(io.Discard)
	fmt.Fprintf(w, "\n%s", c.examples)
}

// set reports whether the flag name was given on the command line.
func (c *command) set(name string) bool {
	found := false
	c.fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}
