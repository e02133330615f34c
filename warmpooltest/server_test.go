package warmpooltest

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/warmpool/warmpool/internal/refserver"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// post sends POST /answer with Client and returns the response, body read.
func post(t testing.TB, s *Server, query string) *http.Response {
	t.Helper()
	resp, err := s.Client().Post(s.AnswerURL()+query, "application/json", strings.NewReader(`{"question":"why?"}`))
	if err != nil {
		t.Fatalf("POST %s: %v", query, err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatalf("read body: %v", err)
	}
	resp.Body.Close()
	return resp
}

func TestNewServerProtocols(t *testing.T) {
	tests := []struct {
		proto, scheme, want string
	}{
		{"", "http://", "HTTP/1.1"},
		{"http", "http://", "HTTP/1.1"},
		{"tls", "https://", "HTTP/2.0"},
		{"tls-h1", "https://", "HTTP/1.1"},
		{"h2c", "http://", "HTTP/2.0"},
	}
	for _, tt := range tests {
		t.Run("proto="+tt.proto, func(t *testing.T) {
			s := NewServer(t, Options{Proto: tt.proto})
			if !strings.HasPrefix(s.URL, tt.scheme+"127.0.0.1:") {
				t.Errorf("URL: got %q, want %s127.0.0.1:PORT", s.URL, tt.scheme)
			}
			if got, want := s.TLSConfig() != nil, tt.scheme == "https://"; got != want {
				t.Errorf("TLSConfig() != nil: got %v, want %v", got, want)
			}
			for range 3 {
				if resp := post(t, s, ""); resp.StatusCode != http.StatusOK || resp.Proto != tt.want {
					t.Fatalf("answer: got %d %s, want 200 %s", resp.StatusCode, resp.Proto, tt.want)
				}
			}
			if st := s.Stats(); st.Accepted != 1 || st.Requests != 3 || st.Executions != 3 || st.Protocols[tt.want] != 3 {
				t.Errorf("Accepted, Requests, Executions, Protocols: got %d, %d, %d, %v, want 1, 3, 3, {%s: 3}",
					st.Accepted, st.Requests, st.Executions, st.Protocols, tt.want)
			}
		})
	}
}

func TestNewServerClosesAtCleanup(t *testing.T) {
	var addr string
	t.Run("inner", func(t *testing.T) {
		s := NewServer(t, Options{})
		post(t, s, "")
		addr = s.Addr()
	})
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
		t.Fatalf("dial %s after the test: got a connection, want the server closed", addr)
	}
}

func TestStartRejectsBadOptions(t *testing.T) {
	for _, opts := range []Options{
		{Proto: "h3"},
		{ResetIdle: true},
		{KeepAliveTimeoutHeader: true},
		{MaxRequestsPerConn: -1},
	} {
		if s, err := Start(opts); err == nil {
			s.Close()
			t.Errorf("Start(%+v): got nil error, want one", opts)
		}
	}
}

func TestFaults(t *testing.T) {
	s := NewServer(t, Options{Token: "secret"})
	if resp := post(t, s, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without token: got %d, want 401", resp.StatusCode)
	}
	s.SetStatus(http.StatusServiceUnavailable)
	if resp := post(t, s, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("SetStatus(503) without token: got %d, want 401 first", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, s.AnswerURL(), strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer secret")
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("SetStatus(503): got %d, want 503", resp.StatusCode)
	}
	if st := s.Stats(); st.Unauthorized != 2 || st.Executions != 0 {
		t.Errorf("Unauthorized, Executions: got %d, %d, want 2, 0", st.Unauthorized, st.Executions)
	}
}

// TestIdleTimeoutReset is the failure a pooled client must survive: a
// connection reused after the server's idle timeout has been reset.
func TestIdleTimeoutReset(t *testing.T) {
	s := NewServer(t, Options{IdleTimeout: 100 * time.Millisecond, ResetIdle: true, KeepAliveTimeoutHeader: true})
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: warmpooltest\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("answer: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if got := resp.Header.Get("Keep-Alive"); got != "timeout=1" {
		t.Errorf("Keep-Alive: got %q, want timeout=1", got)
	}
	if _, err := br.ReadByte(); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("read after the idle timeout: got %v, want ECONNRESET", err)
	}
	if st := s.Stats(); st.ClosedIdle != 1 || st.ClosedReset != 1 || st.IdleTimeoutMS != 100 {
		t.Errorf("ClosedIdle, ClosedReset, IdleTimeoutMS: got %d, %d, %d, want 1, 1, 100", st.ClosedIdle, st.ClosedReset, st.IdleTimeoutMS)
	}
}

func TestMaxRequestsPerConn(t *testing.T) {
	for _, proto := range []string{"http", "tls", "h2c"} {
		t.Run(proto, func(t *testing.T) {
			s := NewServer(t, Options{Proto: proto, MaxRequestsPerConn: 4})
			for range 10 {
				if resp := post(t, s, ""); resp.StatusCode != http.StatusOK {
					t.Fatalf("status: got %d, want 200", resp.StatusCode)
				}
			}
			st := s.Stats()
			wantGoAways, maxAccepted := int64(0), int64(3)
			if proto != "http" {
				// net/http's HTTP/2 client may dial once more when the
				// GOAWAY reaches it just as it sends the next request (a
				// loaded machine makes that likelier): 3 or 4 connections.
				wantGoAways, maxAccepted = 2, 4
			}
			if st.Accepted < 3 || st.Accepted > maxAccepted || st.ConnRequestsMax != 4 || st.GoAways != wantGoAways || st.MaxRequestsPerConn != 4 {
				t.Errorf("Accepted, ConnRequestsMax, GoAways, MaxRequestsPerConn: got %d, %d, %d, %d, want 3..%d, 4, %d, 4",
					st.Accepted, st.ConnRequestsMax, st.GoAways, st.MaxRequestsPerConn, maxAccepted, wantGoAways)
			}
		})
	}
}

// TestStatsMirrorsRefserver keeps Stats in step with the backend's counters:
// same fields, same JSON names, in the same order.
func TestStatsMirrorsRefserver(t *testing.T) {
	ours, theirs := reflect.TypeFor[Stats](), reflect.TypeFor[refserver.Stats]()
	if ours.NumField() != theirs.NumField() {
		t.Fatalf("fields: got %d, want %d as refserver.Stats", ours.NumField(), theirs.NumField())
	}
	for i := range ours.NumField() {
		o, r := ours.Field(i), theirs.Field(i)
		if o.Name != r.Name || o.Type != r.Type || o.Tag.Get("json") != r.Tag.Get("json") {
			t.Errorf("field %d: got %s %s %q, want %s %s %q", i, o.Name, o.Type, o.Tag.Get("json"), r.Name, r.Type, r.Tag.Get("json"))
		}
	}
}
