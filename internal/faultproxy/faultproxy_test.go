package faultproxy

import (
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// echoServer echoes every connection on 127.0.0.1 until the test ends.
func echoServer(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func newProxy(t testing.TB, upstream string) *Proxy {
	t.Helper()
	p, err := New(upstream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes msg and reads len(msg) bytes back within timeout.
func roundTrip(c net.Conn, msg string, timeout time.Duration) (string, error) {
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return "", err
	}
	if _, err := io.WriteString(c, msg); err != nil {
		return "", err
	}
	buf := make([]byte, len(msg))
	n, err := io.ReadFull(c, buf)
	return string(buf[:n]), err
}

func TestPassThrough(t *testing.T) {
	p := newProxy(t, echoServer(t))
	if !strings.HasPrefix(p.Addr(), "127.0.0.1:") {
		t.Fatalf("Addr() = %q, want 127.0.0.1:PORT", p.Addr())
	}
	c := dial(t, p.Addr())
	for i := range 3 {
		got, err := roundTrip(c, "hello", 2*time.Second)
		if err != nil || got != "hello" {
			t.Fatalf("round trip %d: got %q, %v; want \"hello\"", i, got, err)
		}
	}
	if got := p.Accepted(); got != 1 {
		t.Errorf("Accepted() = %d, want 1", got)
	}
	if got := p.Open(); got != 1 {
		t.Errorf("Open() = %d, want 1", got)
	}
}

func TestLatency(t *testing.T) {
	p := newProxy(t, echoServer(t))
	if err := p.AddToxic(Latency("slow", Downstream, 150*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	c := dial(t, p.Addr())
	start := time.Now()
	if got, err := roundTrip(c, "ping", 5*time.Second); err != nil || got != "ping" {
		t.Fatalf("got %q, %v; want \"ping\"", got, err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("round trip took %s, want ≥ 150ms of latency", d)
	}
	if err := p.RemoveToxic("slow"); err != nil {
		t.Fatal(err)
	}
	if err := p.RemoveToxic("slow"); err == nil {
		t.Error("removing a removed toxic: got nil error")
	}
}

func TestTimeoutIsABlackHole(t *testing.T) {
	p := newProxy(t, echoServer(t))
	if err := p.AddToxic(Timeout("hole", Upstream)); err != nil {
		t.Fatal(err)
	}
	c := dial(t, p.Addr())
	_, err := roundTrip(c, "lost", 200*time.Millisecond)
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("read through a black hole: got %v, want a timeout", err)
	}
	if err := p.RemoveToxic("hole"); err != nil {
		t.Fatal(err)
	}
	c2 := dial(t, p.Addr())
	if got, err := roundTrip(c2, "found", 2*time.Second); err != nil || got != "found" {
		t.Fatalf("after removing the toxic: got %q, %v; want \"found\"", got, err)
	}
}

func TestCutEndsTheStream(t *testing.T) {
	p := newProxy(t, echoServer(t))
	if err := p.AddToxic(Cut("cut", Downstream, 5)); err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // per connection, not per proxy
		c := dial(t, p.Addr())
		if err := c.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(c, "hello world"); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(c)
		if err != nil || string(got) != "hello" {
			t.Fatalf("connection %d: read %q, %v; want \"hello\" then EOF", i, got, err)
		}
	}
}

func TestDisableRefusesAndEnableRestores(t *testing.T) {
	p := newProxy(t, echoServer(t))
	c := dial(t, p.Addr())
	if _, err := roundTrip(c, "a", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Disable()
	p.Disable() // idempotent
	if err := c.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Errorf("open connection after Disable: read %d bytes, want an error", n)
	}
	if c2, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		c2.Close()
		t.Fatal("dial while disabled succeeded, want connection refused")
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial while disabled: %v, want connection refused", err)
	}
	if err := p.Enable(); err != nil {
		t.Fatal(err)
	}
	if err := p.Enable(); err != nil { // idempotent
		t.Fatal(err)
	}
	c3 := dial(t, p.Addr())
	if got, err := roundTrip(c3, "back", 2*time.Second); err != nil || got != "back" {
		t.Fatalf("after Enable: got %q, %v; want \"back\"", got, err)
	}
}

func TestResetPeers(t *testing.T) {
	p := newProxy(t, echoServer(t))
	c := dial(t, p.Addr())
	if _, err := roundTrip(c, "a", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := p.ResetPeers(); n != 1 {
		t.Errorf("ResetPeers() = %d, want 1", n)
	}
	if err := c.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err := c.Read(make([]byte, 1))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("read after ResetPeers: %v, want connection reset by peer", err)
	}
	// The proxy itself keeps serving.
	c2 := dial(t, p.Addr())
	if got, err := roundTrip(c2, "ok", 2*time.Second); err != nil || got != "ok" {
		t.Fatalf("after ResetPeers: got %q, %v; want \"ok\"", got, err)
	}
}

func TestUpstreamDownClosesClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	p := newProxy(t, addr)
	c := dial(t, p.Addr())
	if err := c.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read through a proxy whose upstream is down: got no error")
	}
}

func TestRefusesToxicsThatLeak(t *testing.T) {
	p := newProxy(t, echoServer(t))
	for _, tx := range []Toxic{
		{Type: "limit_data", Attributes: map[string]any{"bytes": 10}},
		{Type: "reset_peer", Attributes: map[string]any{"timeout": 0}},
		{Type: "timeout", Attributes: map[string]any{"timeout": 100}},
	} {
		if err := p.AddToxic(tx); err == nil {
			t.Errorf("AddToxic(%s %v): got nil error, want a refusal", tx.Type, tx.Attributes)
		}
	}
	if err := p.AddToxic(Toxic{Type: "no_such_toxic"}); err == nil {
		t.Error("AddToxic of an unknown type: got nil error")
	}
	if err := p.AddToxic(Toxic{Type: "latency", Stream: "sideways"}); err == nil {
		t.Error("AddToxic on an unknown stream: got nil error")
	}
}

// TestCloseEndsEveryGoroutine closes the proxy while data sits in toxics on
// its way to clients that have gone: the case where plain toxiproxy leaves
// goroutines blocked forever.
func TestCloseEndsEveryGoroutine(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // registered first, so run last
	upstream := echoServer(t)
	p, err := New(upstream)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AddToxic(Latency("slow", Downstream, 100*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := p.AddToxic(Toxic{Name: "slices", Type: "slicer", Stream: Downstream,
		Attributes: map[string]any{"average_size": 4, "size_variation": 2, "delay": 0}}); err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	for range 20 {
		c, err := net.DialTimeout("tcp", p.Addr(), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(c, strings.Repeat("data ", 200)); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// Half the clients leave with their echo still in the latency toxic:
	// with SO_LINGER 0 their close is a reset, so the proxy's writes fail.
	for _, c := range conns[:10] {
		_ = c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
	// A cut on a live connection, removed again, and a black hole added
	// to links that are open.
	if err := p.AddToxic(Timeout("hole", Upstream)); err != nil {
		t.Fatal(err)
	}
	if err := p.RemoveToxic("slow"); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	for _, c := range conns[10:] {
		c.Close()
	}
	if err := p.Enable(); err == nil {
		t.Error("Enable after Close: got nil error")
	}
}
