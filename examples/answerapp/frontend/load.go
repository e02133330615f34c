package frontend

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warmpool/warmpool"
)

// loadResult is a burst of questions sent by the load button.
type loadResult struct {
	N, C     int
	OK       int
	Failed   []kindCount
	Elapsed  time.Duration
	Created  int64   // connections the pool opened during the burst
	Requests int64   // attempts it made
	Reuse    float64 // of those attempts, the share on a connection that had served before, in %
}

type kindCount struct {
	Kind string
	N    int
}

// loadTimeout bounds one burst.
const loadTimeout = 2 * time.Minute

func (s *Server) loadRun(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	_ = r.ParseForm()
	n, errN := strconv.Atoi(r.PostForm.Get("n"))
	c, errC := strconv.Atoi(r.PostForm.Get("c"))
	if errN != nil || errC != nil || n < 1 || n > s.cfg.MaxLoad || c < 1 || c > maxConcurrency {
		s.render(w, http.StatusBadRequest, page{Problem: &problem{
			What: "That burst cannot be sent.",
			Do:   fmt.Sprintf("Send between 1 and %d questions, over 1 to %d at a time.", s.cfg.MaxLoad, maxConcurrency)}})
		return
	}
	if !s.load.TryLock() {
		s.render(w, http.StatusTooManyRequests, page{Problem: &problem{
			What: "Another burst is under way.", Do: "Wait for it to end, then try again."}})
		return
	}
	defer s.load.Unlock()
	res := s.Load(r.Context(), n, c)
	s.render(w, http.StatusOK, page{Load: &res})
}

// Load sends n questions to the backend, c at a time, within two minutes
// (or until ctx ends), and tells how they and the pool fared.
func (s *Server) Load(ctx context.Context, n, c int) loadResult {
	ctx, cancel := context.WithTimeout(ctx, loadTimeout)
	defer cancel()
	before := s.client.Stats()
	var (
		next   atomic.Int64
		mu     sync.Mutex
		ok     int
		failed = map[string]int{}
		wg     sync.WaitGroup
	)
	start := time.Now()
	for range c {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(n) && ctx.Err() == nil; i = next.Add(1) {
				_, err := s.Ask(ctx, fmt.Sprintf("Question %d of a burst of %d: what does pooling buy?", i, n))
				mu.Lock()
				if err == nil {
					ok++
				} else {
					failed[warmpool.ErrorKind(err)]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	after := s.client.Stats()
	res := loadResult{N: n, C: c, OK: ok, Elapsed: time.Since(start).Round(time.Millisecond),
		Created: after.Created - before.Created, Requests: after.Requests - before.Requests}
	if res.Requests > 0 {
		res.Reuse = 100 * float64(after.Reused-before.Reused) / float64(res.Requests)
	}
	for _, k := range slices.Sorted(maps.Keys(failed)) {
		res.Failed = append(res.Failed, kindCount{k, failed[k]})
	}
	return res
}
