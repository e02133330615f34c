package main

import (
	"errors"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/warmpool/warmpool"
)

// TestErrorTextSaysEachThingOnce: an idle race reached post's report as
// "POST URL: POST URL: the server closed…", net/http's *url.Error and the
// library's *warmpool.IdleCloseError each naming the request.
func TestErrorTextSaysEachThingOnce(t *testing.T) {
	const u = "http://127.0.0.1:41367/answer"
	idle := &warmpool.IdleCloseError{Method: "POST", URL: u, Idle: 5 * time.Second, Err: io.EOF}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"idle race", &url.Error{Op: "Post", URL: u + "?token=x", Err: idle},
			"POST " + u + ": the server closed the pooled connection as the request was sent on it (reused after 5s idle)"},
		{"idle race after retries", &url.Error{Op: "Put", URL: u, Err: &warmpool.RetryError{Attempts: 4,
			Err: &warmpool.IdleCloseError{Method: "PUT", URL: u, Idle: time.Second, Idempotent: true, Err: io.EOF}}},
			"PUT " + u + ": giving up after 4 attempts: the server closed the pooled connection as the request was sent on it (reused after 1s idle); retries did not get through"},
		{"refused", &url.Error{Op: "Post", URL: u, Err: errors.New("dial tcp 127.0.0.1:41367: connect: connection refused")},
			"POST " + u + ": dial tcp 127.0.0.1:41367: connect: connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := errorText(tt.err)
			if !strings.HasPrefix(got, tt.want) {
				t.Errorf("got\n%s\nwant it to start with\n%s", got, tt.want)
			}
			if n := strings.Count(got, u); n != 1 {
				t.Errorf("the URL appears %d times in %q, want once", n, got)
			}
			if strings.Contains(got, "warmpool: ") {
				t.Errorf("%q repeats the library's prefix", got)
			}
			line := kindLine(3, warmpool.ErrorKind(tt.err), got)
			if strings.Count(line, u) != 1 {
				t.Errorf("post's line %q names the URL more than once", line)
			}
		})
	}
}
