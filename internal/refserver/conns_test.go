package refserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// rawRequest is one POST /answer on a raw connection.
const rawRequest = "POST /answer HTTP/1.1\r\nHost: refserver\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"

// rawExchange writes one request on c and reads the response.
func rawExchange(t testing.TB, c net.Conn, br *bufio.Reader) *http.Response {
	t.Helper()
	if _, err := io.WriteString(c, rawRequest); err != nil {
		t.Fatalf("write request: %v", err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatalf("read body: %v", err)
	}
	resp.Body.Close()
	return resp
}

// TestIdleTimeoutHTTP1 holds a raw connection idle past IdleTimeout and
// checks what a client that reuses it then sees: EOF after a FIN, ECONNRESET
// after an RST.
func TestIdleTimeoutHTTP1(t *testing.T) {
	const idle = 200 * time.Millisecond
	for _, reset := range []bool{false, true} {
		t.Run(fmt.Sprintf("reset=%v", reset), func(t *testing.T) {
			t.Parallel()
			s := newServer(t, Options{IdleTimeout: idle, ResetIdle: reset})
			c := dial(t, s)
			br := bufio.NewReader(c)
			if resp := rawExchange(t, c, br); resp.StatusCode != http.StatusOK {
				t.Fatalf("status: got %d, want 200", resp.StatusCode)
			}
			idleFrom := time.Now()
			waitFor(t, "ClosedIdle == 1", func() bool { return s.Stats().ClosedIdle == 1 })
			// The client's clock starts a moment after the server's (the
			// answer is read after it is written): allow 5 %.
			if d := time.Since(idleFrom); d < idle*95/100 {
				t.Errorf("closed after %v idle, want at least %v", d, idle*95/100)
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			var err error
			if reset {
				// The RST is there before any reuse: the next read fails.
				_, err = br.ReadByte()
				if !errors.Is(err, syscall.ECONNRESET) {
					t.Errorf("read after idle close: got %v, want ECONNRESET", err)
				}
			} else {
				// The client reuses the connection: its request goes out, and
				// instead of an answer it reads the FIN.
				io.WriteString(c, rawRequest)
				_, err = http.ReadResponse(br, nil)
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, syscall.ECONNRESET) {
					t.Errorf("reuse after idle close: got %v, want EOF or ECONNRESET", err)
				}
			}
			wantReset := int64(0)
			if reset {
				wantReset = 1
			}
			st := s.Stats()
			if st.Accepted != 1 || st.ClosedIdle != 1 || st.ClosedReset != wantReset || st.GoAways != 0 || st.IdleTimeoutMS != idle.Milliseconds() {
				t.Errorf("Accepted, ClosedIdle, ClosedReset, GoAways, IdleTimeoutMS: got %d, %d, %d, %d, %d, want 1, 1, %d, 0, %d",
					st.Accepted, st.ClosedIdle, st.ClosedReset, st.GoAways, st.IdleTimeoutMS, wantReset, idle.Milliseconds())
			}
		})
	}
}

// TestIdleTimeoutHTTP2 checks that an idle HTTP/2 connection, over TLS and
// h2c, gets a GOAWAY and is closed, and that a Go client then carries on over
// a new connection.
func TestIdleTimeoutHTTP2(t *testing.T) {
	const idle = 200 * time.Millisecond
	tests := []struct {
		proto, client string
		reset         bool
	}{
		{"tls", modeH2, false},
		{"h2c", modeH2C, false},
		{"h2c", modeH2C, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/reset=%v", tt.proto, tt.reset), func(t *testing.T) {
			t.Parallel()
			s := newServer(t, Options{Proto: tt.proto, IdleTimeout: idle, ResetIdle: tt.reset})
			c := newClient(t, s, tt.client, true)
			if r := post(t, c, s.URL()+"/answer", `{}`); r.proto != "HTTP/2.0" {
				t.Fatalf("proto: got %s, want HTTP/2.0", r.proto)
			}
			idleFrom := time.Now()
			waitFor(t, "ClosedIdle == 1", func() bool { return s.Stats().ClosedIdle == 1 })
			// The client's clock starts a moment after the server's (the
			// answer is read after it is written): allow 5 %.
			if d := time.Since(idleFrom); d < idle*95/100 {
				t.Errorf("closed after %v idle, want at least %v", d, idle*95/100)
			}
			if r := post(t, c, s.URL()+"/answer", `{}`); r.status != http.StatusOK {
				t.Errorf("status after the GOAWAY: got %d, want 200", r.status)
			}
			wantReset := int64(0)
			if tt.reset {
				wantReset = 1
			}
			st := s.Stats()
			if st.Accepted != 2 || st.ClosedIdle != 1 || st.GoAways != 1 || st.ClosedReset != wantReset {
				t.Errorf("Accepted, ClosedIdle, GoAways, ClosedReset: got %d, %d, %d, %d, want 2, 1, 1, %d",
					st.Accepted, st.ClosedIdle, st.GoAways, st.ClosedReset, wantReset)
			}
		})
	}
}

// TestMaxRequestsPerConnHTTP1 sends requests one by one: the Nth answer on
// each connection carries "Connection: close" and the connection closes,
// with or without an RST.
func TestMaxRequestsPerConnHTTP1(t *testing.T) {
	const limit, n = 100, 250
	for _, reset := range []bool{false, true} {
		t.Run(fmt.Sprintf("reset=%v", reset), func(t *testing.T) {
			t.Parallel()
			s := newServer(t, Options{MaxRequestsPerConn: limit, ResetIdle: reset})
			c := newClient(t, s, modeH1, true)
			// Count requests per client connection, whichever connection the
			// transport picks: exactly the limit-th on each must close it.
			perConn := make(map[net.Conn]int)
			closes := 0
			for i := 1; i <= n; i++ {
				var conn net.Conn
				trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { conn = info.Conn }}
				req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace),
					http.MethodPost, s.URL()+"/answer", strings.NewReader(`{}`))
				resp, err := c.Do(req)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				perConn[conn]++
				if got, want := resp.Close, perConn[conn] == limit; got != want {
					t.Fatalf("request %d, number %d on its connection: Connection: close %v, want %v", i, perConn[conn], got, want)
				}
				if resp.Close {
					closes++
				}
			}
			if closes != n/limit {
				t.Errorf("answers with Connection: close: got %d, want %d", closes, n/limit)
			}
			waitFor(t, "ClosedMaxRequests == closes", func() bool { return s.Stats().ClosedMaxRequests == int64(closes) })
			wantReset := int64(0)
			if reset {
				wantReset = int64(closes)
			}
			st := s.Stats()
			if st.Accepted != int64(len(perConn)) || st.Requests != n || st.ConnRequestsMax != limit || st.GoAways != 0 || st.ClosedReset != wantReset || st.MaxRequestsPerConn != limit {
				t.Errorf("Accepted, Requests, ConnRequestsMax, GoAways, ClosedReset, MaxRequestsPerConn: got %d, %d, %d, %d, %d, %d, want %d, %d, %d, 0, %d, %d",
					st.Accepted, st.Requests, st.ConnRequestsMax, st.GoAways, st.ClosedReset, st.MaxRequestsPerConn, len(perConn), n, limit, wantReset, limit)
			}
		})
	}
}

// TestMaxRequestsPerConnHTTP2 runs 32 concurrent workers over HTTP/2: each
// connection gets one GOAWAY after its 100th request, lets the streams it has
// accepted finish, and a Go client sees no failure.
func TestMaxRequestsPerConnHTTP2(t *testing.T) {
	const limit, workers, n = 100, 32, 600
	for _, tt := range []struct{ proto, client string }{{"tls", modeH2}, {"h2c", modeH2C}} {
		t.Run(tt.proto, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, Options{Proto: tt.proto, MaxRequestsPerConn: limit})
			c := newClient(t, s, tt.client, true)
			var next, failures atomic.Int64
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					for next.Add(1) <= n {
						r, err := tryPost(context.Background(), c, s.URL()+"/answer", `{}`)
						if err != nil || r.status != http.StatusOK {
							if failures.Add(1) == 1 {
								t.Errorf("first failure: status %d, err %v", r.status, err)
							}
						}
					}
				})
			}
			wg.Wait()
			st := s.Stats()
			if failures.Load() != 0 || st.Requests != n || st.Protocols["HTTP/2.0"] != n {
				t.Errorf("failures, Requests, HTTP/2.0 requests: got %d, %d, %d, want 0, %d, %d",
					failures.Load(), st.Requests, st.Protocols["HTTP/2.0"], n, n)
			}
			// A connection serves its limit plus the streams the client
			// opened before it read the GOAWAY, at most workers-1 more.
			if lo, hi := int64(n/(limit+workers-1)), int64(n/limit); st.GoAways < lo || st.GoAways > hi {
				t.Errorf("GoAways: got %d, want %d..%d", st.GoAways, lo, hi)
			}
			if st.ConnRequestsMax < limit || st.ConnRequestsMax > limit+workers-1 {
				t.Errorf("ConnRequestsMax: got %d, want %d..%d", st.ConnRequestsMax, limit, limit+workers-1)
			}
			if st.Accepted <= st.GoAways {
				t.Errorf("Accepted: got %d, want more than GoAways %d", st.Accepted, st.GoAways)
			}
			waitFor(t, "ClosedMaxRequests == GoAways", func() bool {
				st := s.Stats()
				return st.ClosedMaxRequests == st.GoAways
			})
		})
	}
}

func TestKeepAliveTimeoutHeader(t *testing.T) {
	tests := []struct {
		name   string
		idle   time.Duration
		header bool
		client string
		proto  string
		want   string
	}{
		{"whole seconds", 5 * time.Second, true, modeH1, "http", "timeout=5"},
		{"rounded down", 2500 * time.Millisecond, true, modeH1, "http", "timeout=2"},
		{"at least one", 300 * time.Millisecond, true, modeH1, "http", "timeout=1"},
		{"off", 5 * time.Second, false, modeH1, "http", ""},
		{"not on HTTP/2", 5 * time.Second, true, modeH2C, "h2c", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, Options{Proto: tt.proto, IdleTimeout: tt.idle, KeepAliveTimeoutHeader: tt.header})
			c := newClient(t, s, tt.client, true)
			if got := post(t, c, s.URL()+"/answer", `{}`).header.Get("Keep-Alive"); got != tt.want {
				t.Errorf("Keep-Alive: got %q, want %q", got, tt.want)
			}
			if got := get(t, c, s.URL()+"/healthz").header.Get("Keep-Alive"); got != tt.want {
				t.Errorf("Keep-Alive on /healthz: got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestCloseKnobGoAway counts the GOAWAY that close=1 sends on HTTP/2, once
// per connection.
func TestCloseKnobGoAway(t *testing.T) {
	s := newServer(t, Options{Proto: "h2c"})
	c := newClient(t, s, modeH2C, true)
	post(t, c, s.URL()+"/answer?close=1", `{}`)
	post(t, c, s.URL()+"/answer", `{}`)
	if st := s.Stats(); st.GoAways != 1 || st.Accepted != 2 || st.ClosedMaxRequests != 0 {
		t.Errorf("GoAways, Accepted, ClosedMaxRequests: got %d, %d, %d, want 1, 2, 0", st.GoAways, st.Accepted, st.ClosedMaxRequests)
	}
}

// TestIdleTimeoutRaceReproduced is the production failure IdleTimeout exists
// for: a plain net/http client whose own idle timeout (30s) exceeds the
// server's sends bursts exactly IdleTimeout apart, reuses connections the
// server is closing at that moment, and gets EOF or ECONNRESET on a POST it
// may not retry. The server counts the idle closes behind the failures.
func TestIdleTimeoutRaceReproduced(t *testing.T) {
	const idle, burst, maxBursts = 200 * time.Millisecond, 16, 10
	s := newServer(t, Options{IdleTimeout: idle})
	tr := &http.Transport{IdleConnTimeout: 30 * time.Second, MaxIdleConnsPerHost: burst}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var failures atomic.Int64
	var firstErr atomic.Pointer[error]
	bursts := 0
	for bursts < maxBursts && failures.Load() == 0 {
		if bursts > 0 {
			time.Sleep(idle)
		}
		bursts++
		var wg sync.WaitGroup
		for range burst {
			wg.Go(func() {
				if _, err := tryPost(context.Background(), c, s.URL()+"/answer", `{}`); err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, &err)
				}
			})
		}
		wg.Wait()
	}
	if failures.Load() == 0 {
		t.Fatalf("no client failure in %d bursts %v apart; server closed %d connections idle", bursts, idle, s.Stats().ClosedIdle)
	}
	t.Logf("%d failures in %d bursts, first: %v", failures.Load(), bursts, *firstErr.Load())
	if st := s.Stats(); st.ClosedIdle == 0 {
		t.Errorf("ClosedIdle: got 0, want the server to count the closes behind %d failures", failures.Load())
	}
}
