package main

import (
	"bytes"
	"context"
	"flag"
	"testing"

	"go.uber.org/goleak"

	"github.com/warmpool/warmpool/internal/refserver"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// runCLI calls run in-process and returns what it wrote.
func runCLI(t testing.TB, ctx context.Context, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(ctx, args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func newRefserver(t testing.TB, opts refserver.Options) *refserver.Server {
	t.Helper()
	srv, err := refserver.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}
