// Package diaghook carries the pool doctor's rules to warmpool's debug page.
// Package doctor judges a warmpool.Stats snapshot, so it imports warmpool and
// warmpool cannot import it; instead doctor registers its Diagnose here when
// it is linked into a program, and the page asks here. The Finding type lives
// here so that both sides name the same type (doctor re-exports it).
package diaghook

import "sync/atomic"

// Finding is one problem the doctor saw in a pool, in plain language: what
// was seen, the figure that showed it, and the setting or code to change.
type Finding struct {
	// Rule names the check that fired, stable for alerting and tests: one
	// of doctor.Rules.
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	Host     string   `json:"host"`    // the address ("host:port") it concerns; "" for the whole client
	Message  string   `json:"message"` // what was seen, with the figure that triggered the rule
	Fix      string   `json:"fix"`     // what to change, naming the setting by its config key
	Value    float64  `json:"value"`   // that figure: a share from 0 to 1, or a count
}

// Severity says whether a finding costs performance or failed requests.
type Severity string

// String formats f on one line, such as
// "warning: 127.0.0.1:8080: … ; fix: …".
func (f Finding) String() string {
	s := string(f.Severity) + ": "
	if f.Host != "" {
		s += f.Host + ": "
	}
	return s + f.Message + "; fix: " + f.Fix
}

// Func judges a snapshot: stats is a warmpool.Stats and cfg a
// warmpool.Config (any here, as this package cannot import warmpool).
type Func func(stats, cfg any) []Finding

var registered atomic.Pointer[Func]

// Register installs the doctor's rules; package doctor calls it from init.
func Register(f Func) { registered.Store(&f) }

// Diagnose runs the registered rules; ok is false when package doctor is not
// linked into the program.
func Diagnose(stats, cfg any) (findings []Finding, ok bool) {
	f := registered.Load()
	if f == nil {
		return nil, false
	}
	return (*f)(stats, cfg), true
}
