package capserver

import (
	"sync"
	"time"
)

// job is one request's work, from its arrival until a handler slot has
// executed it.
type job struct {
	index    int64     // arrival order at this server, from 0
	tag      string    // the request's X-Bench-Tag
	deadline time.Time // the caller's, from X-Bench-Deadline; zero: none given
	done     chan struct{}
}

// fifo is the server's queue: jobs wait in arrival order, without bound,
// for one of the handler slots. Paused (the server hangs), it keeps taking
// jobs and hands none out. Its length is the server's queue length.
type fifo struct {
	mu     sync.Mutex
	cond   sync.Cond
	jobs   []*job // jobs[head:] wait; guarded by mu
	head   int
	paused bool
	closed bool
}

func newFIFO() *fifo {
	q := &fifo{}
	q.cond.L = &q.mu
	return q
}

// push queues j last; it reports false once the queue is closed.
func (q *fifo) push(j *job) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false
	}
	q.jobs = append(q.jobs, j)
	q.cond.Signal()
	return true
}

// pop takes the first job, waiting while there is none or the queue is
// paused; false once it is closed.
func (q *fifo) pop() (*job, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for (q.head == len(q.jobs) || q.paused) && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return nil, false
	}
	j := q.jobs[q.head]
	q.jobs[q.head] = nil
	q.head++
	if q.head == len(q.jobs) { // empty: start over, keeping the array
		q.jobs, q.head = q.jobs[:0], 0
	} else if q.head > 1024 && q.head > len(q.jobs)/2 {
		q.jobs, q.head = append(q.jobs[:0], q.jobs[q.head:]...), 0
	}
	return j, true
}

// setPaused stops or resumes handing jobs out.
func (q *fifo) setPaused(p bool) {
	q.mu.Lock()
	q.paused = p
	q.mu.Unlock()
	q.cond.Broadcast()
}

// len is how many jobs wait.
func (q *fifo) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.jobs) - q.head
}

// close wakes every pop, which then fails, and returns the jobs that were
// still waiting.
func (q *fifo) close() []*job {
	q.mu.Lock()
	left := append([]*job(nil), q.jobs[q.head:]...)
	q.jobs, q.head, q.closed = nil, 0, true
	q.mu.Unlock()
	q.cond.Broadcast()
	return left
}
