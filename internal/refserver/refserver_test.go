package refserver

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// newServer starts a server that the test closes when it ends.
func newServer(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatalf("New(%+v): %v", opts, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// client protocol modes for newClient.
const (
	modeH1  = "h1"  // HTTP/1.1 only
	modeH2  = "h2"  // HTTP/2 over TLS if the server offers it, else HTTP/1.1
	modeH2C = "h2c" // HTTP/2 cleartext by prior knowledge only
)

// newClient returns a plain net/http client for s speaking mode; its idle
// connections are closed when the test ends.
func newClient(t testing.TB, s *Server, mode string, keepAlive bool) *http.Client {
	t.Helper()
	var p http.Protocols
	switch mode {
	case modeH1:
		p.SetHTTP1(true)
	case modeH2:
		p.SetHTTP1(true)
		p.SetHTTP2(true)
	case modeH2C:
		p.SetUnencryptedHTTP2(true)
	default:
		t.Fatalf("unknown client mode %q", mode)
	}
	tr := &http.Transport{
		TLSClientConfig:   s.ClientTLSConfig(),
		Protocols:         &p,
		ForceAttemptHTTP2: mode == modeH2,
		DisableKeepAlives: !keepAlive,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// reply is a response with its body read.
type reply struct {
	status int
	header http.Header
	body   string
	proto  string
}

// post sends POST path with a JSON body and optional extra header pairs.
func post(t testing.TB, c *http.Client, url, body string, header ...string) reply {
	t.Helper()
	r, err := tryPost(context.Background(), c, url, body, header...)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	return r
}

func tryPost(ctx context.Context, c *http.Client, url, body string, header ...string) (reply, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return do(c, req)
}

func get(t testing.TB, c *http.Client, url string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := do(c, req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return r
}

func do(c *http.Client, req *http.Request) (reply, error) {
	resp, err := c.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: string(b), proto: resp.Proto}, nil
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestProtocols(t *testing.T) {
	tests := []struct {
		name   string
		proto  string
		client string
		want   string
		scheme string
	}{
		{"http", "http", modeH1, "HTTP/1.1", "http://"},
		{"http with h2-capable client", "", modeH2, "HTTP/1.1", "http://"},
		{"tls h2", "tls", modeH2, "HTTP/2.0", "https://"},
		{"tls h1 client", "tls", modeH1, "HTTP/1.1", "https://"},
		{"tls-h1 refuses h2", "tls-h1", modeH2, "HTTP/1.1", "https://"},
		{"h2c prior knowledge", "h2c", modeH2C, "HTTP/2.0", "http://"},
		{"h2c port also speaks h1", "h2c", modeH1, "HTTP/1.1", "http://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, Options{Proto: tt.proto})
			if !strings.HasPrefix(s.URL(), tt.scheme) {
				t.Errorf("URL() = %q, want prefix %q", s.URL(), tt.scheme)
			}
			if got, want := s.ClientTLSConfig() != nil, tt.scheme == "https://"; got != want {
				t.Errorf("ClientTLSConfig() != nil: got %v, want %v", got, want)
			}
			r := post(t, newClient(t, s, tt.client, true), s.URL()+"/answer", `{}`)
			if r.status != http.StatusOK {
				t.Fatalf("status: got %d, want 200", r.status)
			}
			if r.proto != tt.want {
				t.Errorf("client proto: got %s, want %s", r.proto, tt.want)
			}
			if got := s.Stats().Protocols; got[tt.want] != 1 || len(got) != 1 {
				t.Errorf("server protocols: got %v, want {%s: 1}", got, tt.want)
			}
		})
	}
}

func TestConnectionCounting(t *testing.T) {
	const n = 5
	tests := []struct {
		proto, client string
		keepAlive     bool
		wantAccepted  int64
	}{
		{"http", modeH1, true, 1},
		{"http", modeH1, false, n},
		{"tls", modeH2, true, 1},
		{"tls-h1", modeH1, true, 1},
		{"tls-h1", modeH1, false, n},
		{"h2c", modeH2C, true, 1},
	}
	for _, tt := range tests {
		name := tt.proto + "/" + tt.client
		if !tt.keepAlive {
			name += "/no-keepalive"
		}
		t.Run(name, func(t *testing.T) {
			s := newServer(t, Options{Proto: tt.proto})
			c := newClient(t, s, tt.client, tt.keepAlive)
			for range n {
				if r := post(t, c, s.URL()+"/answer", `{}`); r.status != http.StatusOK {
					t.Fatalf("status: got %d, want 200", r.status)
				}
			}
			st := s.Stats()
			if st.Accepted != tt.wantAccepted {
				t.Errorf("Accepted: got %d, want %d", st.Accepted, tt.wantAccepted)
			}
			// Without keep-alive the next dial may beat the server's report that
			// the last connection closed, so only the pooled peak is exact.
			if tt.keepAlive && st.PeakOpen != 1 {
				t.Errorf("PeakOpen: got %d, want 1", st.PeakOpen)
			}
			if st.Requests != n || st.Executions != n {
				t.Errorf("Requests, Executions: got %d, %d, want %d, %d", st.Requests, st.Executions, n, n)
			}
			c.CloseIdleConnections()
			waitFor(t, "Open == 0", func() bool { return s.Stats().Open == 0 })
			if st := s.Stats(); st.Closed != tt.wantAccepted {
				t.Errorf("Closed: got %d, want %d", st.Closed, tt.wantAccepted)
			}
		})
	}
}

// dial opens a raw TCP connection to s, closed when the test ends.
func dial(t testing.TB, s *Server) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestMaxConns(t *testing.T) {
	s := newServer(t, Options{MaxConns: 2})
	c1 := dial(t, s)
	dial(t, s)
	waitFor(t, "Open == 2", func() bool { return s.Stats().Open == 2 })

	extra := dial(t, s)
	extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := extra.Read(make([]byte, 1)); n != 0 || err == nil || isTimeout(err) {
		t.Fatalf("read on refused connection: got (%d, %v), want (0, EOF or reset)", n, err)
	}
	if st := s.Stats(); st.Refused != 1 || st.Accepted != 2 || st.Open != 2 {
		t.Errorf("Refused, Accepted, Open: got %d, %d, %d, want 1, 2, 2", st.Refused, st.Accepted, st.Open)
	}

	c1.Close()
	waitFor(t, "Open == 1", func() bool { return s.Stats().Open == 1 })
	c := dial(t, s)
	io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: refserver\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("request under the limit: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status under the limit: got %d, want 200", resp.StatusCode)
	}
	if st := s.Stats(); st.Accepted != 3 || st.Refused != 1 || st.PeakOpen != 2 {
		t.Errorf("Accepted, Refused, PeakOpen: got %d, %d, %d, want 3, 1, 2", st.Accepted, st.Refused, st.PeakOpen)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestResetPeak(t *testing.T) {
	s := newServer(t, Options{})
	conns := []net.Conn{dial(t, s), dial(t, s), dial(t, s)}
	waitFor(t, "Open == 3", func() bool { return s.Stats().Open == 3 })
	conns[0].Close()
	conns[1].Close()
	waitFor(t, "Open == 1", func() bool { return s.Stats().Open == 1 })
	if got := s.Stats().PeakOpen; got != 3 {
		t.Errorf("PeakOpen before reset: got %d, want 3", got)
	}
	s.ResetPeak()
	if got := s.Stats().PeakOpen; got != 1 {
		t.Errorf("PeakOpen after reset: got %d, want 1", got)
	}
}

func TestStatsEndpoint(t *testing.T) {
	s := newServer(t, Options{})
	c := newClient(t, s, modeH1, true)
	post(t, c, s.URL()+"/answer", `{}`)
	if r := get(t, c, s.URL()+"/healthz"); r.status != http.StatusOK || r.body != "ok" {
		t.Errorf("GET /healthz: got %d %q, want 200 \"ok\"", r.status, r.body)
	}
	r := get(t, c, s.URL()+"/stats")
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /stats: got %d %s, want 200 application/json", r.status, r.header.Get("Content-Type"))
	}
	var fields map[string]any
	if err := json.Unmarshal([]byte(r.body), &fields); err != nil {
		t.Fatalf("decode /stats: %v", err)
	}
	for _, k := range []string{"accepted", "open", "peak_open", "closed", "refused", "requests",
		"executions", "deduplicated", "unauthorized", "in_flight", "protocols",
		"closed_idle", "closed_max_requests", "closed_reset", "goaways", "conn_requests_max",
		"idle_timeout_ms", "max_requests_per_conn"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("/stats lacks %q: %s", k, r.body)
		}
	}
	if len(fields) != 18 {
		t.Errorf("/stats fields: got %d, want 18: %s", len(fields), r.body)
	}
	var st Stats
	if err := json.Unmarshal([]byte(r.body), &st); err != nil {
		t.Fatalf("decode /stats: %v", err)
	}
	// /stats counts itself: three requests, one of them in flight.
	if st.Accepted != 1 || st.Requests != 3 || st.Executions != 1 || st.InFlight != 1 || st.Protocols["HTTP/1.1"] != 3 {
		t.Errorf("/stats: got %+v, want accepted 1, requests 3, executions 1, in_flight 1, protocols {HTTP/1.1: 3}", st)
	}
}
