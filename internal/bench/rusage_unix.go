//go:build unix

package bench

import (
	"syscall"
	"time"
)

// cpuTimes reads this process's CPU time so far, user and system, from
// getrusage(RUSAGE_SELF). It covers every goroutine: the load generator, and
// the in-process server and proxy when there are.
func cpuTimes() (cpuTime, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return cpuTime{}, false
	}
	return cpuTime{
		user: time.Duration(ru.Utime.Nano()),
		sys:  time.Duration(ru.Stime.Nano()),
	}, true
}
