//go:build !unix

package bench

// cpuTimes is not available here; CPU figures are reported as unknown.
func cpuTimes() (cpuTime, bool) { return cpuTime{}, false }
