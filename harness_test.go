package warmpool

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/refserver"
)

// startServer runs a reference server for the test and closes it after.
func startServer(t testing.TB, opts refserver.Options) *refserver.Server {
	t.Helper()
	srv, err := refserver.New(opts)
	if err != nil {
		t.Fatalf("refserver.New: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// newClient builds a client trusting srv and closes it after the test.
func newClient(t testing.TB, srv *refserver.Server, cfg Config, opts ...Option) *Client {
	t.Helper()
	if tc := srv.ClientTLSConfig(); tc != nil {
		opts = append([]Option{WithTLSConfig(tc)}, opts...)
	}
	c, err := New(cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// answer is the reference server's /answer reply.
type answer struct {
	Answer string `json:"answer"`
}

var question = map[string]string{"question": "what does pooling buy?"}

// parallel runs n callers of fn at once and returns their errors.
func parallel(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

func countErrs(errs []error, target error) (ok, matched, other int, firstOther error) {
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, target):
			matched++
		default:
			other++
			if firstOther == nil {
				firstOther = err
			}
		}
	}
	return
}

func post(c *Client, url string) error {
	var a answer
	return c.PostJSON(context.Background(), url, question, &a)
}

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
