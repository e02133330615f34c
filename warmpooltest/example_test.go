package warmpooltest_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/warmpooltest"
)

// A pooled client against a TLS backend: the server counts one connection
// for five calls. In a test, use NewServer(t, ...) instead of Start.
func Example() {
	srv, err := warmpooltest.Start(warmpooltest.Options{Proto: "tls", Token: "secret"})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	client, err := warmpool.New(warmpool.DefaultConfig(),
		warmpool.WithTLSConfig(srv.TLSConfig()),
		warmpool.WithTokenSource(warmpool.StaticToken("secret")))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	for range 5 {
		var out struct {
			Answer string `json:"answer"`
		}
		if err := client.PostJSON(context.Background(), srv.AnswerURL(), map[string]string{"question": "why?"}, &out); err != nil {
			log.Fatal(err)
		}
	}
	st := srv.Stats()
	fmt.Println(st.Requests, "requests over", st.Accepted, "connection")
	fmt.Println("HTTP/2 requests:", st.Protocols["HTTP/2.0"])
	// Output:
	// 5 requests over 1 connection
	// HTTP/2 requests: 5
}

// A server that ends every connection after 4 requests, as nginx's
// keepalive_requests does: 10 requests need 3 connections, and a client that
// honours "Connection: close" sees no error.
func ExampleOptions_maxRequestsPerConn() {
	srv, err := warmpooltest.Start(warmpooltest.Options{MaxRequestsPerConn: 4})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	for range 10 {
		resp, err := srv.Client().Post(srv.AnswerURL(), "application/json", strings.NewReader(`{}`))
		if err != nil {
			log.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	st := srv.Stats()
	fmt.Println("connections:", st.Accepted)
	fmt.Println("most requests on one:", st.ConnRequestsMax)
	// Output:
	// connections: 3
	// most requests on one: 4
}

// SetStatus takes the backend down for every request until it is lifted.
func ExampleServer_SetStatus() {
	srv, err := warmpooltest.Start(warmpooltest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	answer := func() int {
		resp, err := srv.Client().Post(srv.AnswerURL(), "application/json", strings.NewReader(`{}`))
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	srv.SetStatus(http.StatusServiceUnavailable)
	fmt.Println(answer())
	srv.SetStatus(0)
	fmt.Println(answer())
	fmt.Println("executed:", srv.Stats().Executions)
	// Output:
	// 503
	// 200
	// executed: 1
}
