package bench

import (
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
)

// progress tells a person at a terminal what runs now and how long the
// whole invocation has left: a line as each slice of a run ends, and, every
// s.ProgressEvery while one runs, a status line that the next overwrites.
// With a nil writer it only counts, for the partial report.
type progress struct {
	w      io.Writer // nil: silent
	every  time.Duration
	total  int           // slices in the invocation: runs × rounds
	slice  time.Duration // each slice's duration
	rounds int
	now    func() time.Time

	mu         sync.Mutex
	n          int           // slices started
	finished   int           // slices finished
	label      string        // the slice running, "[3/10] tuned over http"
	sliceStart time.Time     // when it started
	overhead   time.Duration // over the finished slices: wall time less their duration
	status     bool          // a status line is on screen, to be overwritten

	stopc chan struct{}
	wg    sync.WaitGroup
}

func newProgress(s Settings) *progress {
	p := &progress{
		w: s.Progress, every: s.ProgressEvery, total: s.runCount() * s.Rounds,
		slice: s.slice(0).Duration, rounds: s.Rounds, now: time.Now, stopc: make(chan struct{}),
	}
	if p.w != nil {
		p.wg.Go(p.tick)
	}
	return p
}

// tick writes the status line every p.every until stop.
func (p *progress) tick() {
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			p.mu.Lock()
			if p.label != "" {
				fmt.Fprintf(p.w, "\r\033[K%s", p.statusLine(p.now()))
				p.status = true
			}
			p.mu.Unlock()
		case <-p.stopc:
			return
		}
	}
}

// stop ends the status line and its ticker.
func (p *progress) stop() {
	close(p.stopc)
	p.wg.Wait()
	if p.w != nil && p.status {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

func (p *progress) start(proto, mode string, round int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	p.label = fmt.Sprintf("warmpool bench: [%d/%d] %s over %s", p.n, p.total, mode, proto)
	if p.rounds > 1 {
		p.label += fmt.Sprintf(", round %d/%d", round+1, p.rounds)
	}
	p.sliceStart = p.now()
}

func (p *progress) done(sl *modeRun) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finished++
	p.overhead += max(p.now().Sub(p.sliceStart)-p.slice, 0)
	if p.w != nil {
		ok, n := sl.res.tally.ok, sl.res.completed()
		fmt.Fprintf(p.w, "\r\033[K%s: %s requests, %s req/s, %s errors\n",
			p.label, FormatInt(n), FormatRate(float64(ok)/sl.res.elapsed.Seconds()), FormatInt(n-ok))
		p.status = false
	}
	p.label = ""
}

// statusLine says what runs, for how long so far, and the time left: the
// slices to go at their duration, less what the current one has done, plus
// the mean time the finished ones took beyond theirs (the grace for the
// last answers, closing, settling). A -requests bound can end runs sooner.
func (p *progress) statusLine(now time.Time) string {
	in := now.Sub(p.sliceStart)
	togo := p.total - p.finished
	left := time.Duration(togo)*p.slice - min(in, p.slice)
	if p.finished > 0 {
		left += p.overhead / time.Duration(p.finished) * time.Duration(togo)
	}
	return fmt.Sprintf("%s: %s of %s; about %s left", p.label, fmtClock(in), fmtClock(p.slice), fmtClock(max(left, 0)))
}

// fmtClock formats d to a tenth of a second under 10s, else to the second:
// 2.5s, 12s, 1m05s.
func fmtClock(d time.Duration) string {
	if d < 10*time.Second {
		return strconv.FormatFloat(d.Round(100*time.Millisecond).Seconds(), 'f', 1, 64) + "s"
	}
	secs := int64((d + time.Second/2) / time.Second)
	if secs < 60 {
		return fmt.Sprintf("%ds", secs)
	}
	return fmt.Sprintf("%dm%02ds", secs/60, secs%60)
}

// stoppedAfter says how far an interrupted invocation got.
func (p *progress) stoppedAfter() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rounds > 1 {
		return fmt.Sprintf("interrupted after %d of %d slices (%d rounds per run): a mode's figures cover the rounds it finished", p.finished, p.total, p.rounds)
	}
	return fmt.Sprintf("interrupted after %d of %d runs", p.finished, p.total)
}
