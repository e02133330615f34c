package refserver

import (
	"context"
	"sync"
)

// idemCapacity is how many Idempotency-Key responses a server remembers.
const idemCapacity = 100_000

// storedResponse is what a replay sends back.
type storedResponse struct {
	status int
	ctype  string
	body   []byte
}

// idemEntry is one key: in flight until done is closed, then either stored
// (resp is valid) or abandoned (removed from the map, so the next request with
// the key executes).
type idemEntry struct {
	done   chan struct{}
	stored bool // written before done is closed
	resp   storedResponse
}

// idemStore remembers the responses of the last cap keys, oldest evicted first.
type idemStore struct {
	mu      sync.Mutex
	cap     int
	entries map[string]*idemEntry
	ring    []string // stored keys in insertion order, circular once full
	next    int      // ring slot to overwrite once len(ring) == cap
}

func newIdemStore(capacity int) *idemStore {
	return &idemStore{cap: capacity, entries: make(map[string]*idemEntry)}
}

// claim returns the entry for key. owner is true if the caller must execute
// and then call store or abandon; otherwise the entry holds a stored response
// to replay. A caller that finds the key in flight waits for it; if ctx ends
// first, claim returns ctx's error.
func (st *idemStore) claim(ctx context.Context, key string) (e *idemEntry, owner bool, err error) {
	for {
		st.mu.Lock()
		e, ok := st.entries[key]
		if !ok {
			e = &idemEntry{done: make(chan struct{})}
			st.entries[key] = e
			st.mu.Unlock()
			return e, true, nil
		}
		st.mu.Unlock()
		select {
		case <-e.done:
			if e.stored {
				return e, false, nil
			}
			// The owner gave up; try to claim the key ourselves.
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// store records the owner's response and wakes any waiters.
func (st *idemStore) store(key string, e *idemEntry, resp storedResponse) {
	st.mu.Lock()
	e.resp, e.stored = resp, true
	if len(st.ring) < st.cap {
		st.ring = append(st.ring, key)
	} else {
		old := st.ring[st.next]
		if oe := st.entries[old]; oe != nil && oe.stored {
			delete(st.entries, old)
		}
		st.ring[st.next] = key
		st.next = (st.next + 1) % st.cap
	}
	st.mu.Unlock()
	close(e.done)
}

// abandon forgets an entry whose owner did not finish, and wakes any waiters
// so that one of them can execute instead.
func (st *idemStore) abandon(key string, e *idemEntry) {
	st.mu.Lock()
	if st.entries[key] == e {
		delete(st.entries, key)
	}
	st.mu.Unlock()
	close(e.done)
}

// len reports how many keys are remembered or in flight.
func (st *idemStore) len() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.entries)
}
