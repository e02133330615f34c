package warmpool

import (
	"testing"
	"time"
)

// The pool doctor's tests live with it, in package doctor. callEvery stays
// for the tests here that use it (statslog_test.go).

// callEvery runs n sequential calls of fn, gap apart, failing the test on an
// error unless failing is set.
func callEvery(t testing.TB, n int, gap time.Duration, failing bool, fn func() error) {
	t.Helper()
	for i := range n {
		if i > 0 && gap > 0 {
			time.Sleep(gap)
		}
		if err := fn(); err != nil && !failing {
			t.Fatalf("call %d: %v", i, err)
		}
	}
}
