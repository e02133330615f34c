package warmpool_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/refserver"
)

// A frontend posting JSON to its backend with a bearer token: one client for
// the whole process, so 3 calls use 1 connection.
func Example() {
	backend, err := refserver.New(refserver.Options{Token: "id-token"})
	if err != nil {
		log.Fatal(err)
	}
	defer backend.Close()

	client, err := warmpool.New(warmpool.DefaultConfig(),
		warmpool.WithTokenSource(warmpool.StaticToken("id-token")))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	for range 3 {
		var out struct {
			Answer string `json:"answer"`
		}
		if err := client.PostJSON(context.Background(), backend.URL()+"/answer",
			map[string]string{"question": "why pool?"}, &out); err != nil {
			log.Fatal(err)
		}
	}
	st := client.Stats()
	fmt.Printf("requests %d, connections %d, reuse rate %.2f\n", st.Requests, st.Created, st.ReuseRate())
	fmt.Println("server accepted", backend.Stats().Accepted, "connection")
	// Output:
	// requests 3, connections 1, reuse rate 0.67
	// server accepted 1 connection
}

// Non-2xx answers are typed errors carrying the status and a short,
// redacted excerpt of the body.
func ExampleStatusError() {
	backend, err := refserver.New(refserver.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer backend.Close()
	client, err := warmpool.New(warmpool.DefaultConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	err = client.PostJSON(context.Background(), backend.URL()+"/answer?status=404", map[string]string{}, nil)
	var se *warmpool.StatusError
	if errors.As(err, &se) {
		fmt.Println(se.StatusCode, se.Method)
	}
	// Output: 404 POST
}

// HTTPClient hands the same pool and token to code that wants an
// *http.Client.
func ExampleClient_HTTPClient() {
	backend, err := refserver.New(refserver.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer backend.Close()
	client, err := warmpool.New(warmpool.DefaultConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	var hc *http.Client = client.HTTPClient()
	resp, err := hc.Get(backend.URL() + "/healthz")
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	// Output: 200
}

// Shutdown lets in-flight requests finish, then closes every connection.
func ExampleClient_Shutdown() {
	client, err := warmpool.New(warmpool.DefaultConfig())
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Shutdown(ctx); err != nil {
		log.Print(err)
	}
	_, err = client.HTTPClient().Get("http://127.0.0.1:1/")
	fmt.Println(errors.Is(err, warmpool.ErrClosed))
	// Output: true
}
