package warmpool

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// backend is a test server whose answers the test holds and releases, and
// whose counts are taken on the server side: requests that reached it, in
// flight now, and the most in flight at once.
type backend struct {
	*httptest.Server
	arrived  atomic.Int64
	inflight atomic.Int64
	peak     atomic.Int64
	status   atomic.Int64 // the status to answer; 0: 200
	delay    atomic.Int64 // nanos each answer waits, unless held
	lastHdr  atomic.Pointer[http.Header]

	mu   sync.Mutex
	hold chan struct{} // while not nil, answers wait for it to close
}

func startBackend(t testing.TB) *backend {
	t.Helper()
	b := &backend{}
	b.Server = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(func() {
		b.release()
		b.Close()
	})
	return b
}

func (b *backend) serve(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	h := r.Header.Clone()
	b.lastHdr.Store(&h)
	b.arrived.Add(1)
	storeMax(&b.peak, b.inflight.Add(1))
	defer b.inflight.Add(-1)
	b.mu.Lock()
	hold := b.hold
	b.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}
	if d := time.Duration(b.delay.Load()); d > 0 {
		time.Sleep(d)
	}
	if s := b.status.Load(); s != 0 {
		w.WriteHeader(int(s))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"answer":"42"}`)
}

// holdAnswers makes answers wait until release.
func (b *backend) holdAnswers() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.hold == nil {
		b.hold = make(chan struct{})
	}
}

// release lets the held answers go, and the next ones answer at once.
func (b *backend) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.hold != nil {
		close(b.hold)
		b.hold = nil
	}
}

func get(c *Client, url string) error {
	return c.DoJSON(context.Background(), http.MethodGet, url, nil, nil)
}

func TestConcurrencyLimitFixed(t *testing.T) {
	b := startBackend(t)
	b.holdAnswers()
	c, err := New(Config{ConcurrencyLimit: "4", MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	held := make(chan error, 4)
	for range 4 {
		go func() { held <- get(c, b.URL) }()
	}
	waitFor(t, "4 requests at the server", 5*time.Second, func() bool { return b.arrived.Load() == 4 })
	// The limit is reached: more calls fail at once, never sent.
	for i := range 20 {
		start := time.Now()
		err := get(c, b.URL)
		if !errors.Is(err, ErrOverloaded) || ErrorKind(err) != "overloaded" {
			t.Fatalf("call %d over the limit: %v (kind %q), want ErrOverloaded", i, err, ErrorKind(err))
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("call %d over the limit took %s, want it refused at once (generous bound 1s)", i, d)
		}
		var oe *OverloadError
		if !errors.As(err, &oe) || oe.Limit != 4 || oe.InFlight != 4 {
			t.Errorf("error %#v, want an *OverloadError at limit 4 with 4 in flight", err)
		}
	}
	b.release()
	for range 4 {
		if err := <-held; err != nil {
			t.Errorf("held call: %v", err)
		}
	}
	if got := b.arrived.Load(); got != 4 {
		t.Errorf("server saw %d requests, want the 4 under the limit", got)
	}
	st := c.Stats()
	if st.Overloaded != 20 || st.ConcurrencyLimit != 4 || st.FailuresByKind["overloaded"] != 20 {
		t.Errorf("Stats: Overloaded %d, ConcurrencyLimit %d, failures by kind %v; want 20, 4, 20 overloaded",
			st.Overloaded, st.ConcurrencyLimit, st.FailuresByKind)
	}
	if err := get(c, b.URL); err != nil {
		t.Errorf("after the held calls ended: %v, want room again", err)
	}
}

func TestConcurrencyLimitQueue(t *testing.T) {
	b := startBackend(t)
	b.delay.Store(int64(20 * time.Millisecond))
	c, err := New(Config{ConcurrencyLimit: "3", LimitQueueTimeout: 10 * time.Second, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	errs := parallel(30, func(int) error { return get(c, b.URL) })
	if ok, _, _, first := countErrs(errs, nil); ok != 30 {
		t.Fatalf("%d of 30 queued calls succeeded, first error: %v", ok, first)
	}
	if peak := b.peak.Load(); peak > 3 {
		t.Errorf("server saw %d requests at once, want at most the limit, 3", peak)
	}
	if st := c.Stats(); st.LimitWaits == 0 || st.Overloaded != 0 || st.LimitWaiting != 0 {
		t.Errorf("Stats: LimitWaits %d, Overloaded %d, LimitWaiting %d; want some waits, no refusal, none waiting now",
			st.LimitWaits, st.Overloaded, st.LimitWaiting)
	}

	// A queue that does not move within limit_queue_timeout refuses.
	b.holdAnswers()
	c2, err := New(Config{ConcurrencyLimit: "1", LimitQueueTimeout: 50 * time.Millisecond, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	first := make(chan error, 1)
	go func() { first <- get(c2, b.URL) }()
	waitFor(t, "the first request at the server", 5*time.Second, func() bool { return b.inflight.Load() == 1 })
	err = get(c2, b.URL)
	var oe *OverloadError
	if !errors.As(err, &oe) || oe.Waited < 50*time.Millisecond {
		t.Errorf("queued call: %v, want ErrOverloaded after waiting limit_queue_timeout (50ms)", err)
	}
	b.release()
	if err := <-first; err != nil {
		t.Errorf("first call: %v", err)
	}
}

// TestAdaptiveLimitFollowsLatency drives the limiter's update with measured
// intervals on a fake clock: steady latency at the minimum grows the limit,
// latency twice the minimum shrinks it, a drop cuts it, and it stays
// within its bounds.
func TestAdaptiveLimitFollowsLatency(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	h := health{interval: true}
	var l limiter
	l.init(concurrencyAdaptive, 0)
	interval := func(lat time.Duration, n int, drops int, inflight int64) int64 {
		now = now.Add(limitInterval)
		for range n {
			h.observe(outcome{took: lat, status: 200}, now)
		}
		for range drops {
			h.observe(outcome{status: http.StatusServiceUnavailable}, now)
		}
		storeMax(&h.ivPeak, inflight)
		l.update(&h, inflight, now)
		return l.limit.Load()
	}
	if got := l.limit.Load(); got != limitInitial {
		t.Fatalf("initial limit %d, want %d", got, limitInitial)
	}
	var lim int64
	for range 50 {
		lim = interval(10*time.Millisecond, 20, 0, lim) // fully used, latency at the minimum
	}
	if lim < 40 {
		t.Errorf("after 50 intervals at the minimum latency, fully used: limit %d, want it grown well past %d", lim, limitInitial)
	}
	grown := lim
	for range 30 {
		lim = interval(30*time.Millisecond, 20, 0, lim) // latency 3× the minimum: a queue
	}
	if lim >= grown/2 {
		t.Errorf("after 30 intervals at 3× the minimum latency: limit %d, want it well under %d", lim, grown)
	}
	before := lim
	if lim = interval(10*time.Millisecond, 0, 3, lim); float64(lim) > float64(before)*limitBackoff+1 {
		t.Errorf("after an interval with drops: limit %d, want it cut from %d by %g", lim, before, limitBackoff)
	}
	for range 200 {
		lim = interval(time.Second, 20, 1, lim)
	}
	if lim != limitMin {
		t.Errorf("after 200 intervals of drops: limit %d, want the floor %d", lim, limitMin)
	}
	// Load under half the limit is the load's bound, not the server's: no
	// growth.
	flat := lim
	for range 20 {
		lim = interval(10*time.Millisecond, 20, 0, 1)
	}
	if lim != flat {
		t.Errorf("with 1 in flight against a limit of %d: limit moved to %d, want it left alone", flat, lim)
	}
}

// TestAdaptiveLimitUnderLoad runs a backend that serves 4 requests at once
// (more queue) with 60 callers: the adaptive limit settles well under its
// start (40), near what the backend serves, and the backend never sees all
// 60.
func TestAdaptiveLimitUnderLoad(t *testing.T) {
	b := startBackend(t)
	sem := make(chan struct{}, 4)
	b.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.arrived.Add(1)
		storeMax(&b.peak, b.inflight.Add(1))
		defer b.inflight.Add(-1)
		sem <- struct{}{}
		time.Sleep(10 * time.Millisecond)
		<-sem
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{}`)
	})
	c, err := New(Config{ConcurrencyLimit: "adaptive", MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var ok, overloaded atomic.Int64
	parallel(60, func(int) error {
		for ctx.Err() == nil {
			switch err := get(c, b.URL); {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrOverloaded):
				overloaded.Add(1)
				time.Sleep(5 * time.Millisecond)
			default:
				t.Errorf("call: %v", err)
				return err
			}
		}
		return nil
	})
	st := c.Stats()
	t.Logf("limit %d, ok %d, overloaded %d (throttled %d), server peak in flight %d, latency min %s p50 %s",
		st.ConcurrencyLimit, ok.Load(), overloaded.Load(), st.Throttled, b.peak.Load(), st.LatencyMin, st.LatencyP50)
	if st.ConcurrencyLimit >= limitInitial/2 || st.ConcurrencyLimit < limitMin {
		t.Errorf("limit %d against a backend serving 4 at once, want it well under its start (%d)", st.ConcurrencyLimit, limitInitial)
	}
	if ok.Load() == 0 || overloaded.Load() == 0 || st.Overloaded+st.Throttled != overloaded.Load() {
		t.Errorf("ok %d, overloaded %d (Stats: %d at the limit, %d throttled): want both, and Stats to agree",
			ok.Load(), overloaded.Load(), st.Overloaded, st.Throttled)
	}
	if peak := b.peak.Load(); peak >= 60 {
		t.Errorf("server saw %d at once: the limit held nothing back", peak)
	}
}
