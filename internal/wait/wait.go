// Package wait holds the one bounded sleep of the module: the retry backoff,
// the CLI's pauses between requests and the reference server's delays all
// wait through it.
package wait

import (
	"context"
	"errors"
	"time"
)

// ErrDone is returned by Sleep when done was closed first.
var ErrDone = errors.New("wait: done")

// Sleep waits d, or less: it returns nil after d, the cause of ctx's end if
// ctx ends first, or ErrDone if done (which may be nil) is closed first. A d
// of zero or less returns at once, with ctx's error if it has ended.
func Sleep(ctx context.Context, d time.Duration, done <-chan struct{}) error {
	if d <= 0 {
		return context.Cause(ctx)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-done:
		return ErrDone
	}
}
