package refserver

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRestartSameAddr(t *testing.T) {
	s1, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Leave an idle keep-alive connection open so that Close actively closes it
	// and the server's side of it lingers in TIME_WAIT.
	c1 := newClient(t, s1, modeH1, true)
	post(t, c1, s1.URL()+"/answer", `{}`)
	addr := s1.Addr()
	if err := s1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s1.Close(); err != nil {
		t.Errorf("second Close: got %v, want nil", err)
	}
	if st := s1.Stats(); st.Open != 0 || st.Closed != 1 {
		t.Errorf("after Close: Open, Closed: got %d, %d, want 0, 1", st.Open, st.Closed)
	}

	s2 := newServer(t, Options{Addr: addr})
	if s2.Addr() != addr {
		t.Errorf("Addr: got %s, want %s", s2.Addr(), addr)
	}
	if r := post(t, newClient(t, s2, modeH1, true), s2.URL()+"/answer", `{}`); r.status != http.StatusOK {
		t.Errorf("status after restart: got %d, want 200", r.status)
	}
	if st := s2.Stats(); st.Accepted != 1 || st.Executions != 1 {
		t.Errorf("new server Accepted, Executions: got %d, %d, want 1, 1", st.Accepted, st.Executions)
	}
}

func TestShutdownWaitsForInFlight(t *testing.T) {
	s := newServer(t, Options{Proto: "tls"})
	c := newClient(t, s, modeH2, true)
	done := make(chan reply, 1)
	go func() {
		r, err := tryPost(context.Background(), c, s.URL()+"/answer?delay=100ms", `{}`)
		if err != nil {
			t.Errorf("in-flight request: %v", err)
		}
		done <- r
	}()
	waitFor(t, "InFlight == 1", func() bool { return s.Stats().InFlight == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if r := <-done; r.status != http.StatusOK {
		t.Errorf("in-flight status: got %d, want 200", r.status)
	}
	if st := s.Stats(); st.Open != 0 || st.Executions != 1 {
		t.Errorf("after Shutdown Open, Executions: got %d, %d, want 0, 1", st.Open, st.Executions)
	}
}

func TestCloseCancelsInFlight(t *testing.T) {
	s := newServer(t, Options{Delay: time.Minute})
	c := newClient(t, s, modeH1, true)
	errc := make(chan error, 1)
	go func() {
		_, err := tryPost(context.Background(), c, s.URL()+"/answer", `{}`)
		errc <- err
	}()
	waitFor(t, "InFlight == 1", func() bool { return s.Stats().InFlight == 1 })
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v, want it immediate", d)
	}
	if err := <-errc; err == nil {
		t.Error("in-flight request: got nil error, want one")
	}
	if st := s.Stats(); st.InFlight != 0 || st.Open != 0 || st.Executions != 0 {
		t.Errorf("after Close InFlight, Open, Executions: got %d, %d, %d, want 0, 0, 0", st.InFlight, st.Open, st.Executions)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"unknown proto", Options{Proto: "h3"}},
		{"negative response bytes", Options{ResponseBytes: -1}},
		{"negative delay", Options{Delay: -time.Second}},
		{"negative max conns", Options{MaxConns: -1}},
		{"negative idle timeout", Options{IdleTimeout: -time.Second}},
		{"negative max requests per conn", Options{MaxRequestsPerConn: -1}},
		{"reset without a limit", Options{ResetIdle: true}},
		{"keep-alive header without idle timeout", Options{KeepAliveTimeoutHeader: true}},
		{"bad address", Options{Addr: "127.0.0.1:notaport"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.opts)
			if err == nil {
				s.Close()
				t.Fatalf("New(%+v): got nil error, want one", tt.opts)
			}
		})
	}
}

func TestIPv6Loopback(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	ln.Close()
	for _, proto := range []string{"http", "tls"} {
		t.Run(proto, func(t *testing.T) {
			s := newServer(t, Options{Addr: "[::1]:0", Proto: proto})
			if !strings.Contains(s.URL(), "://[::1]:") {
				t.Errorf("URL: got %q, want host [::1]", s.URL())
			}
			if r := post(t, newClient(t, s, modeH2, true), s.URL()+"/answer", `{}`); r.status != http.StatusOK {
				t.Errorf("status: got %d, want 200", r.status)
			}
		})
	}
}
