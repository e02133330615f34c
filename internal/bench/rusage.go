package bench

import "time"

// cpuTime is CPU time used by the process, as getrusage reports it.
type cpuTime struct {
	user, sys time.Duration
}

// sub is the CPU time used between b and a, a taken after b.
func (a cpuTime) sub(b cpuTime) cpuTime {
	return cpuTime{user: a.user - b.user, sys: a.sys - b.sys}
}

// CPU is the process's CPU time over one run. It includes everything in the
// process: with the in-process server (and proxy), their CPU too, so it
// compares modes with each other, not with a client alone.
type CPU struct {
	UserS float64 `json:"user_s"`
	SysS  float64 `json:"sys_s"`
	// UsPerRequest is (user + sys) / completed requests, in microseconds.
	UsPerRequest float64 `json:"us_per_request"`
}

// cpuReport makes the CPU figures of a run of n requests; nil when
// getrusage is not available or nothing completed.
func cpuReport(d cpuTime, n int64) *CPU {
	if n <= 0 {
		return nil
	}
	return &CPU{
		UserS:        d.user.Seconds(),
		SysS:         d.sys.Seconds(),
		UsPerRequest: float64((d.user+d.sys)/time.Nanosecond) / 1e3 / float64(n),
	}
}

// cpuMeter measures the CPU time of a stretch of code.
type cpuMeter struct {
	start cpuTime
	ok    bool
}

func startCPU() cpuMeter {
	t, ok := cpuTimes()
	return cpuMeter{start: t, ok: ok}
}

// stop returns the CPU time used since start; false if it is not known.
func (m cpuMeter) stop() (cpuTime, bool) {
	end, ok := cpuTimes()
	if !m.ok || !ok {
		return cpuTime{}, false
	}
	return end.sub(m.start), true
}
