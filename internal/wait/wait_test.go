package wait

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSleep(t *testing.T) {
	done := make(chan struct{})
	close(done)
	cause := errors.New("the caller gave up")
	ended, cancel := context.WithCancelCause(context.Background())
	cancel(cause)
	for _, tc := range []struct {
		name string
		ctx  context.Context
		d    time.Duration
		done <-chan struct{}
		want error
	}{
		{"elapsed", context.Background(), time.Millisecond, nil, nil},
		{"zero", context.Background(), 0, nil, nil},
		{"context ended", ended, time.Hour, nil, cause},
		{"zero, context ended", ended, 0, nil, cause},
		{"done", context.Background(), time.Hour, done, ErrDone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Sleep(tc.ctx, tc.d, tc.done); !errors.Is(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
