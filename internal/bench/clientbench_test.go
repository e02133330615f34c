package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/refserver"
)

// The Go benchmarks compare warmpool's request path with a bare http.Client
// whose transport is configured as warmpool configures its own from
// DefaultConfig, against the in-process reference server over TLS, on warm
// connections. What they measure is warmpool's own cost per request: its
// round tripper, accounting and token, on top of net/http.
//
//	go test -run '^$' -bench . -benchtime 2s ./internal/bench/
//
// Names follow the dimensions: proto=h1|h2 (HTTP/1.1 or HTTP/2 by ALPN),
// mode=bare|warmpool (the same request through Do), mode=bare-json|
// warmpool-postjson (encode, POST, decode: json.Marshal and json.Unmarshal
// around the bare client, PostJSON on warmpool's), and sequential or parallel
// (b.RunParallel with 16 goroutines per GOMAXPROCS).

const benchToken = "bench-token-0123456789abcdef"

// question is DefaultBody as a Go value, for the JSON modes.
type question struct {
	Question string   `json:"question"`
	Session  string   `json:"session"`
	History  []string `json:"history"`
	Options  struct {
		Model     string `json:"model"`
		MaxTokens int    `json:"max_tokens"`
	} `json:"options"`
}

type answer struct {
	Answer    string `json:"answer"`
	Execution int64  `json:"execution"`
	Padding   string `json:"padding"`
}

func BenchmarkPost(b *testing.B) {
	var q question
	if err := json.Unmarshal(DefaultBody, &q); err != nil {
		b.Fatal(err)
	}
	for _, proto := range []string{"h1", "h2"} {
		srv, err := refserver.New(refserver.Options{Proto: "tls", Token: benchToken})
		if err != nil {
			b.Fatal(err)
		}
		url := srv.URL() + "/answer"
		h2 := proto == "h2"
		for _, mode := range []string{"bare", "warmpool", "bare-json", "warmpool-postjson"} {
			for _, parallel := range []bool{false, true} {
				name := fmt.Sprintf("proto=%s/mode=%s/sequential", proto, mode)
				if parallel {
					name = fmt.Sprintf("proto=%s/mode=%s/parallel", proto, mode)
				}
				b.Run(name, func(b *testing.B) {
					op, closeFn := benchOp(b, srv, url, mode, h2, &q)
					defer closeFn()
					if err := op(); err != nil { // warm a connection up
						b.Fatal(err)
					}
					b.ReportAllocs()
					// CPU time per request (client and server: one process)
					// varies less than wall time on a shared machine.
					cpu := startCPU()
					defer func() {
						if used, ok := cpu.stop(); ok && b.N > 0 {
							b.ReportMetric(float64(used.user+used.sys)/float64(b.N), "cpu-ns/op")
						}
					}()
					b.ResetTimer()
					if !parallel {
						for b.Loop() {
							if err := op(); err != nil {
								b.Fatal(err)
							}
						}
						return
					}
					b.SetParallelism(16)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := op(); err != nil {
								b.Error(err)
								return
							}
						}
					})
				})
			}
		}
		srv.Close()
	}
}

// benchOp returns one request of mode, and how to close its client.
func benchOp(b *testing.B, srv *refserver.Server, url, mode string, h2 bool, q *question) (func() error, func()) {
	ctx := context.Background()
	switch mode {
	case "bare", "bare-json":
		hc := benchBareClient(srv, h2)
		auth := []string{"Bearer " + benchToken}
		if mode == "bare" {
			return func() error { return benchDo(ctx, hc.Do, url, DefaultBody, auth) }, hc.CloseIdleConnections
		}
		return func() error {
			body, err := json.Marshal(q)
			if err != nil {
				return err
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
			if err != nil {
				return err
			}
			req.Header["Content-Type"] = jsonType
			req.Header["Accept"] = jsonType
			req.Header["Authorization"] = auth
			resp, err := hc.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				return err
			}
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			var a answer
			return json.Unmarshal(b, &a)
		}, hc.CloseIdleConnections
	}
	cfg := warmpool.DefaultConfig()
	cfg.DisableHTTP2 = !h2
	c, err := warmpool.New(cfg, warmpool.WithTokenSource(warmpool.StaticToken(benchToken)), warmpool.WithTLSConfig(srv.ClientTLSConfig()))
	if err != nil {
		b.Fatal(err)
	}
	closeFn := func() { c.Close() }
	if mode == "warmpool" {
		return func() error { return benchDo(ctx, c.Do, url, DefaultBody, nil) }, closeFn
	}
	return func() error {
		var a answer
		return c.PostJSON(ctx, url, q, &a)
	}, closeFn
}

var jsonType = []string{"application/json"}

// benchDo POSTs body with do, reads the answer to the end and closes it.
func benchDo(ctx context.Context, do func(*http.Request) (*http.Response, error), url string, body []byte, auth []string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header["Content-Type"] = jsonType
	if auth != nil {
		req.Header["Authorization"] = auth
	}
	resp, err := do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return err
}

// benchBareClient is net/http configured as warmpool.New configures it from
// DefaultConfig: the same limits, timeouts, keep-alive probes, protocols and
// HTTP/2 health pings.
func benchBareClient(srv *refserver.Server, h2 bool) *http.Client {
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(h2)
	cfg := warmpool.DefaultConfig()
	return &http.Client{
		Timeout: cfg.RequestTimeout,
		Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment,
			DialContext: (&net.Dialer{
				Timeout:         cfg.ConnectionTimeout,
				KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second, Interval: 5 * time.Second, Count: 3},
			}).DialContext,
			TLSClientConfig:       srv.ClientTLSConfig(),
			TLSHandshakeTimeout:   cfg.ConnectionTimeout,
			MaxIdleConnsPerHost:   cfg.MaxConnections,
			MaxConnsPerHost:       cfg.MaxConnections,
			IdleConnTimeout:       cfg.KeepaliveExpiry,
			ExpectContinueTimeout: time.Second,
			Protocols:             &protos,
			HTTP2: &http.HTTP2Config{
				SendPingTimeout: cfg.ConnectionTimeout / 2,
				PingTimeout:     cfg.ConnectionTimeout / 2,
			},
		},
	}
}
