package warmpool_test

import (
	"context"
	"fmt"
	"log"
	"net"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/refserver"
)

// Two replicas of a backend behind one name: round_robin sends each attempt
// to the next address, and Stats has one entry per endpoint, naming the
// host name. StaticResolver stands in for DNS.
func ExampleStaticResolver() {
	a, err := refserver.New(refserver.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	_, port, _ := net.SplitHostPort(a.Addr())
	b, err := refserver.New(refserver.Options{Addr: net.JoinHostPort("127.0.0.2", port)})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	cfg := warmpool.DefaultConfig()
	cfg.Balancer = "round_robin"
	client, err := warmpool.New(cfg, warmpool.WithResolver(warmpool.StaticResolver(map[string][]string{
		"backend.internal": {"127.0.0.1", "127.0.0.2"},
	})))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	url := "http://" + net.JoinHostPort("backend.internal", port) + "/answer"
	for range 4 {
		if err := client.PostJSON(context.Background(), url, map[string]string{"question": "which replica?"}, nil); err != nil {
			log.Fatal(err)
		}
	}
	st := client.Stats()
	for _, key := range st.HostNames() {
		h := st.Hosts[key]
		host, _, _ := net.SplitHostPort(key)
		fmt.Printf("%s (%s): %d requests, %s\n", host, h.HostName, h.Requests, h.EndpointState)
	}
	fmt.Println("servers:", a.Stats().Requests, b.Stats().Requests)
	// Output:
	// 127.0.0.1 (backend.internal): 2 requests, active
	// 127.0.0.2 (backend.internal): 2 requests, active
	// servers: 2 2
}
