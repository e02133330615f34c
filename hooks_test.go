package warmpool

import (
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/refserver"
)

// hookLog records every hook call; hooks run concurrently, so it locks.
type hookLog struct {
	mu        sync.Mutex
	opened    []ConnInfo
	closed    map[string]int64
	reused    int64
	waitStart []string
	waitEnd   []error
	waited    time.Duration
	retries   []RetryInfo
	done      []RequestInfo
}

func (l *hookLog) hooks() Hooks {
	l.closed = make(map[string]int64)
	lock := func(f func()) { l.mu.Lock(); defer l.mu.Unlock(); f() }
	return Hooks{
		ConnOpened: func(i ConnInfo) { lock(func() { l.opened = append(l.opened, i) }) },
		ConnClosed: func(_ ConnInfo, reason string) { lock(func() { l.closed[reason]++ }) },
		ConnReused: func(ConnInfo) { lock(func() { l.reused++ }) },
		WaitStart:  func(host string) { lock(func() { l.waitStart = append(l.waitStart, host) }) },
		WaitEnd: func(_ string, d time.Duration, err error) {
			lock(func() { l.waitEnd = append(l.waitEnd, err); l.waited += d })
		},
		Retry:       func(r RetryInfo) { lock(func() { l.retries = append(l.retries, r) }) },
		RequestDone: func(r RequestInfo) { lock(func() { l.done = append(l.done, r) }) },
	}
}

// snapshot returns a copy of the counts, to compare with Stats.
func (l *hookLog) snapshot() (opened, reused int64, closed CloseReasons) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for r := closeIdleExpiry; r < numCloseReasons; r++ { // the one table of reasons
		*closed.field(r) = l.closed[r.String()]
	}
	return int64(len(l.opened)), l.reused, closed
}

// closes returns a copy of the ConnClosed counts by reason.
func (l *hookLog) closes() map[string]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.closed)
}

// closeCalls returns how many times ConnClosed was called.
func (l *hookLog) closeCalls() int64 {
	var n int64
	for _, c := range l.closes() {
		n += c
	}
	return n
}

func TestHooksCountConnectionsAndRequests(t *testing.T) {
	const workers, perWorker = 16, 10
	for _, p := range protos {
		t.Run(p.name, func(t *testing.T) {
			srv := startServer(t, refserver.Options{Proto: p.server})
			cfg := DefaultConfig()
			cfg.DisableHTTP2 = !p.http2
			var log hookLog
			c := newClient(t, srv, cfg, WithHooks(log.hooks()))
			loadPosts(t, c, srv.URL()+"/answer", workers, perWorker)
			checkAtRest(t, c, srv)
			c.Close()

			st := c.Stats()
			opened, reused, closed := log.snapshot()
			if opened != st.Created || opened != srv.Stats().Accepted {
				t.Errorf("ConnOpened called %d times; Created %d, server accepted %d", opened, st.Created, srv.Stats().Accepted)
			}
			if reused != st.Reused {
				t.Errorf("ConnReused called %d times, Reused = %d", reused, st.Reused)
			}
			if closed != st.ClosedBy || st.Closed != st.Created {
				t.Errorf("ConnClosed reasons %+v, ClosedBy %+v, closed %d of %d created", closed, st.ClosedBy, st.Closed, st.Created)
			}
			for _, info := range log.opened {
				if info.Host != srv.Addr() || info.RemoteAddr != srv.Addr() || !strings.HasPrefix(info.LocalAddr, "127.0.0.1:") {
					t.Errorf("ConnInfo %+v, want host and remote %s, a loopback local address", info, srv.Addr())
					break
				}
			}
			if n := int64(len(log.done)); n != st.Requests || n != workers*perWorker {
				t.Errorf("RequestDone called %d times, Requests = %d, want %d", n, st.Requests, workers*perWorker)
			}
			for _, r := range log.done {
				if r.Host != srv.Addr() || r.Method != http.MethodPost || r.StatusCode != http.StatusOK || r.Err != nil || r.Duration <= 0 {
					t.Errorf("RequestDone(%+v), want POST to %s, 200, no error, a duration", r, srv.Addr())
					break
				}
			}
		})
	}
}

func TestHooksCloseReasons(t *testing.T) {
	// idle opens connections for the server or the client to close later.
	idle := func(t *testing.T, c *Client, srv *refserver.Server) int64 { return openConns(t, c, srv, 3) }
	for _, tc := range []struct {
		reason  string
		opts    refserver.Options
		cfg     func(*Config)
		provoke func(t *testing.T, c *Client, srv *refserver.Server) (closes int64)
	}{
		{"server", refserver.Options{IdleTimeout: 40 * time.Millisecond}, nil, idle},
		{"idle_expiry", refserver.Options{}, func(c *Config) { c.KeepaliveExpiry = 40 * time.Millisecond }, idle},
		{"max_age", refserver.Options{}, func(c *Config) { c.MaxConnectionAge = 40 * time.Millisecond }, idle},
		{"client", refserver.Options{}, nil, func(t *testing.T, c *Client, srv *refserver.Server) int64 {
			n := openConns(t, c, srv, 3)
			c.Close()
			return n
		}},
		{"other", refserver.Options{}, nil, func(t *testing.T, c *Client, srv *refserver.Server) int64 {
			for range 3 {
				if err := doUnread(c, srv.URL()+"/answer"); err != nil {
					t.Fatal(err)
				}
			}
			return 3
		}},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			srv := startServer(t, tc.opts)
			cfg := DefaultConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			var log hookLog
			c := newClient(t, srv, cfg, WithHooks(log.hooks()))
			n := tc.provoke(t, c, srv)
			// Stats counts a close just before its ConnClosed hook runs, so
			// wait for both: the hook may still be running when Closed is n.
			waitFor(t, "every connection to close and its ConnClosed hook to return", 3*time.Second, func() bool {
				return c.Stats().Closed == n && log.closeCalls() == n
			})
			_, _, closed := log.snapshot()
			if st := c.Stats(); closed != st.ClosedBy {
				t.Errorf("ConnClosed reasons %+v, ClosedBy %+v", closed, st.ClosedBy)
			}
			all := log.closes()
			if got := all[tc.reason]; got != n {
				t.Errorf("ConnClosed(%q) called %d times, want %d (all: %v)", tc.reason, got, n, all)
			}
			waitFor(t, "the server to see them closed", 2*time.Second, func() bool { return srv.Stats().Open == 0 })
		})
	}
}

// behind starts a POST that holds the client's one connection for the
// server's delay, and returns once the server has it in hand, so that
// requests sent after it must wait. The returned channel yields its error.
func behind(t testing.TB, c *Client, srv *refserver.Server) <-chan error {
	t.Helper()
	first := make(chan error, 1)
	go func() { first <- post(c, srv.URL()+"/answer") }()
	waitFor(t, "the first request to reach the server", 2*time.Second, func() bool { return srv.Stats().InFlight == 1 })
	return first
}

func TestHooksWaitForConnection(t *testing.T) {
	srv := startServer(t, refserver.Options{Delay: 100 * time.Millisecond})
	cfg := DefaultConfig()
	cfg.MaxConnections, cfg.MaxKeepaliveConnections = 1, 1
	var log hookLog
	c := newClient(t, srv, cfg, WithHooks(log.hooks()))
	first := behind(t, c, srv)
	loadPosts(t, c, srv.URL()+"/answer", 3, 1)
	if err := <-first; err != nil {
		t.Fatal(err)
	}

	st := c.Stats()
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.waitStart) != 3 || len(log.waitEnd) != 3 || st.Waits != 3 {
		t.Errorf("WaitStart %d, WaitEnd %d calls, Waits %d; want 3 of each for 3 callers behind one on 1 connection", len(log.waitStart), len(log.waitEnd), st.Waits)
	}
	for i, host := range log.waitStart {
		if host != srv.Addr() || log.waitEnd[i] != nil {
			t.Errorf("wait %d: host %s, err %v; want %s and nil", i, host, log.waitEnd[i], srv.Addr())
		}
	}
	if log.waited != st.WaitTime || st.WaitTime < 100*time.Millisecond {
		t.Errorf("WaitEnd waited %s in all, WaitTime %s; want equal, ≥ one service time (100ms)", log.waited, st.WaitTime)
	}
	if st.Waiting != 0 {
		t.Errorf("Waiting = %d at rest, want 0", st.Waiting)
	}
}

func TestHooksWaitEndsInPoolTimeout(t *testing.T) {
	srv := startServer(t, refserver.Options{Delay: 500 * time.Millisecond})
	cfg := DefaultConfig()
	cfg.MaxConnections, cfg.MaxKeepaliveConnections = 1, 1
	cfg.PoolTimeout = 20 * time.Millisecond
	var log hookLog
	c := newClient(t, srv, cfg, WithHooks(log.hooks()))
	first := behind(t, c, srv)
	if err := post(c, srv.URL()+"/answer"); !errors.Is(err, ErrPoolTimeout) {
		t.Errorf("second request: %v, want ErrPoolTimeout", err)
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.waitEnd) != 1 || !errors.Is(log.waitEnd[0], ErrPoolTimeout) {
		t.Errorf("WaitEnd errors %v, want one ErrPoolTimeout", log.waitEnd)
	}
	if st := c.Stats(); st.PoolTimeouts != 1 || st.Waits != 1 {
		t.Errorf("PoolTimeouts %d, Waits %d; want 1 and 1", st.PoolTimeouts, st.Waits)
	}
}

func TestHooksRetryAndFailedAttempts(t *testing.T) {
	srv := startServer(t, refserver.Options{})
	cfg := DefaultConfig()
	cfg.MaxRetries = 2
	cfg.RetryBackoffFactor = 0.001
	var log hookLog
	c := newClient(t, srv, cfg, WithHooks(log.hooks()))
	var se *StatusError
	if err := post(c, srv.URL()+"/answer?status=503"); !errors.As(err, &se) || se.StatusCode != 503 {
		t.Fatalf("POST: %v, want a 503 StatusError", err)
	}
	refused := closedAddr(t)
	if err := post(c, "http://"+refused+"/answer"); err == nil {
		t.Fatal("POST to a closed port succeeded")
	}

	log.mu.Lock()
	defer log.mu.Unlock()
	if st := c.Stats(); int64(len(log.retries)) != st.Retries || st.Retries != 4 {
		t.Errorf("Retry called %d times, Retries = %d; want 2 per call", len(log.retries), st.Retries)
	}
	for i, r := range log.retries[:min(2, len(log.retries))] {
		if r.Host != srv.Addr() || r.Attempt != i+1 || r.StatusCode != 503 || r.Err != nil {
			t.Errorf("Retry(%+v), want attempt %d to %s with status 503", r, i+1, srv.Addr())
		}
	}
	var got503, gotErr int
	for _, r := range log.done {
		switch {
		case r.Host == srv.Addr() && r.StatusCode == 503 && r.Err == nil:
			got503++
		case r.Host == refused && r.StatusCode == 0 && r.Err != nil:
			gotErr++
		default:
			t.Errorf("unexpected RequestDone(%+v)", r)
		}
	}
	if got503 != 3 || gotErr != 3 {
		t.Errorf("RequestDone saw %d attempts answered 503 and %d failed, want 3 and 3", got503, gotErr)
	}
}

func TestHooksCompose(t *testing.T) {
	srv := startServer(t, refserver.Options{})
	var (
		mu    sync.Mutex
		calls []string
	)
	note := func(s string) {
		mu.Lock()
		calls = append(calls, s)
		mu.Unlock()
	}
	hooks := func(name string) Hooks {
		return Hooks{
			ConnOpened:  func(ConnInfo) { note(name + ".ConnOpened") },
			RequestDone: func(RequestInfo) { note(name + ".RequestDone") },
		}
	}
	c := newClient(t, srv, DefaultConfig(), WithHooks(hooks("a")), WithHooks(hooks("b")))
	if err := post(c, srv.URL()+"/answer"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := slices.Clone(calls)
	mu.Unlock()
	want := []string{"a.ConnOpened", "b.ConnOpened", "a.RequestDone", "b.RequestDone"}
	if !slices.Equal(got, want) {
		t.Errorf("hook calls: got %v, want %v", got, want)
	}
}
