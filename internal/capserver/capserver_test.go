package capserver

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// newServer starts a server with o, closed when the test ends.
func newServer(t testing.TB, o Options) *Server {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newClient is a client with enough connections for every test's callers.
func newClient(t testing.TB) *http.Client {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// call sends GET to s with a deadline header (zero: none) and a tag, and
// returns the status code (0 on error).
func call(ctx context.Context, c *http.Client, s *Server, deadline time.Time, tag string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+"/answer", nil)
	if err != nil {
		return 0, err
	}
	if !deadline.IsZero() {
		req.Header.Set(DeadlineHeader, strconv.FormatInt(deadline.UnixNano(), 10))
	}
	req.Header.Set(TagHeader, tag)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if got := resp.Header.Get(ServedByHeader); resp.StatusCode == 200 && got != s.Addr() {
		return resp.StatusCode, &headerError{got}
	}
	return resp.StatusCode, nil
}

type headerError struct{ got string }

func (e *headerError) Error() string { return ServedByHeader + ": " + e.got }

// eventually polls cond every millisecond for up to 10 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("after 10s: %s", what)
		}
	}
}

// parallel makes n calls at once and returns how many answered 200.
func parallel(t testing.TB, c *http.Client, s *Server, n int, deadline time.Time, tag string) int {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range n {
		wg.Go(func() {
			code, err := call(context.Background(), c, s, deadline, tag)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Error(err)
			}
			if code == http.StatusOK {
				ok++
			}
		})
	}
	wg.Wait()
	return ok
}

func TestCapacityIsEnforced(t *testing.T) {
	s := newServer(t, Options{Handlers: 4, ServiceTime: 20 * time.Millisecond})
	if ok := parallel(t, newClient(t), s, 24, time.Time{}, "a"); ok != 24 {
		t.Fatalf("answered %d of 24", ok)
	}
	st := s.Stats()
	if st.PeakExecuting > 4 || st.PeakExecuting < 1 {
		t.Errorf("peak executing: got %d, want 1 to 4 (the handlers)", st.PeakExecuting)
	}
	if st.Received != 24 || st.Executed != 24 || st.Wasted != 0 || st.Executing != 0 || st.Queued != 0 {
		t.Errorf("counts: got %+v, want 24 received and executed, none wasted, executing or queued", st)
	}
	if got := st.ByTag["a"]; got != (TagStats{Received: 24, Executed: 24}) {
		t.Errorf("tag a: got %+v", got)
	}
}

func TestWastedExecutions(t *testing.T) {
	s := newServer(t, Options{Handlers: 1, ServiceTime: 100 * time.Millisecond})
	c := newClient(t)
	ctx := context.Background()
	// A holds the one slot for 100ms; B, sent once A executes, has 20ms: it
	// starts past its deadline, and its caller waits on regardless.
	var wg sync.WaitGroup
	wg.Go(func() { call(ctx, c, s, time.Now().Add(time.Hour), "a") })
	eventually(t, "A executing", func() bool { return s.Stats().Executing == 1 })
	if _, err := call(ctx, c, s, time.Now().Add(20*time.Millisecond), "b"); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	// Already past, and none given.
	call(ctx, c, s, time.Now().Add(-time.Second), "c")
	call(ctx, c, s, time.Time{}, "d")
	st := s.Stats()
	if st.Executed != 4 || st.Wasted != 2 {
		t.Errorf("executed %d, wasted %d: want 4 and 2", st.Executed, st.Wasted)
	}
	for tag, want := range map[string]int64{"a": 0, "b": 1, "c": 1, "d": 0} {
		if got := st.ByTag[tag]; got.Wasted != want || got.Executed != 1 || got.Received != 1 {
			t.Errorf("tag %s: got %+v, want 1 received and executed, %d wasted", tag, got, want)
		}
	}
}

func TestWorkRunsAfterTheClientLeft(t *testing.T) {
	s := newServer(t, Options{Handlers: 1, ServiceTime: 50 * time.Millisecond})
	c := newClient(t)
	var wg sync.WaitGroup
	wg.Go(func() { call(context.Background(), c, s, time.Time{}, "a") })
	eventually(t, "A executing", func() bool { return s.Stats().Executing == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan struct{})
	go func() {
		defer close(gaveUp)
		for s.Stats().Queued == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel() // B's caller gives up while B waits for the slot
	}()
	if _, err := call(ctx, c, s, time.Time{}, "b"); err == nil {
		t.Error("B: want the caller's cancellation")
	}
	<-gaveUp
	wg.Wait()
	eventually(t, "B executed", func() bool { return s.Stats().Executed == 2 })
	if st := s.Stats(); st.ClientGone != 1 || st.Received != 2 {
		t.Errorf("got %+v, want 2 received, 1 whose client had gone", st)
	}
}

func TestHangAndRecover(t *testing.T) {
	s := newServer(t, Options{Handlers: 2, ServiceTime: time.Millisecond})
	c := newClient(t)
	s.SetHang(true)
	answered := make(chan int, 1)
	go func() { answered <- parallel(t, c, s, 3, time.Time{}, "h") }()
	eventually(t, "3 held", func() bool { return s.Stats().Queued == 3 })
	time.Sleep(20 * time.Millisecond)
	if st := s.Stats(); st.Executed != 0 || !st.Hanging {
		t.Fatalf("while hanging: got %+v, want nothing executed", st)
	}
	s.SetHang(false)
	if got := <-answered; got != 3 {
		t.Errorf("after recovery: %d of 3 answered", got)
	}
	if st := s.Stats(); st.Executed != 3 || st.Hanging || st.PeakQueued < 3 {
		t.Errorf("after recovery: got %+v, want 3 executed", st)
	}
}

func TestSlowShareIsEvenlySpread(t *testing.T) {
	s := newServer(t, Options{Handlers: 1, ServiceTime: time.Microsecond, SlowShare: 0.1, SlowDelay: 5 * time.Millisecond})
	c := newClient(t)
	for range 25 {
		if _, err := call(context.Background(), c, s, time.Time{}, ""); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.Slow != 2 || st.Executed != 25 {
		t.Errorf("got %d slow of %d, want 2 of 25 (the 10th and the 20th)", st.Slow, st.Executed)
	}
}

func TestFlushCountsTheBacklog(t *testing.T) {
	s := newServer(t, Options{Handlers: 1, ServiceTime: time.Hour})
	c := newClient(t)
	s.SetHang(true)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 4 {
		deadline := time.Now().Add(time.Hour) // two callers with time left, two past it
		if i%2 == 1 {
			deadline = time.Now().Add(-time.Second)
		}
		wg.Go(func() { call(ctx, c, s, deadline, "f") })
	}
	eventually(t, "4 held", func() bool { return s.Stats().Queued == 4 })
	cancel()
	wg.Wait()
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Executed != 4 || st.Wasted != 2 || st.Queued != 0 {
		t.Errorf("got %+v, want 4 executed, 2 wasted, none queued", st)
	}
}

func TestCloseCountsUnexecuted(t *testing.T) {
	s := newServer(t, Options{})
	c := newClient(t)
	s.SetHang(true)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { call(context.Background(), c, s, time.Time{}, "") })
	}
	eventually(t, "2 held", func() bool { return s.Stats().Queued == 2 })
	s.Close()
	wg.Wait()
	if st := s.Stats(); st.Unexecuted != 2 || st.Queued != 0 || st.Executed != 0 {
		t.Errorf("got %+v, want 2 unexecuted", st)
	}
}

func TestOptions(t *testing.T) {
	for _, o := range []Options{
		{Addr: "10.1.2.3:0"},
		{Addr: "nonsense"},
		{Handlers: -1},
		{SlowShare: 1.5},
		{ServiceTime: -time.Second},
	} {
		if s, err := New(o); err == nil {
			s.Close()
			t.Errorf("%+v: want an error", o)
		}
	}
}
