package bench

import (
	"runtime/debug"
)

// modulePath is the warmpool module's.
const modulePath = "github.com/warmpool/warmpool"

// warmpoolVersion is the version of the warmpool module in this binary, from
// its build information: a release such as v1.2.0 when built as a
// dependency or with "go install ...@version"; for a build from a checkout,
// "(devel)" with the VCS revision and "+dirty" for uncommitted changes;
// "unknown" without build information.
func warmpoolVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, d := range bi.Deps {
		if d.Path == modulePath {
			return d.Version
		}
	}
	if bi.Main.Path != modulePath || bi.Main.Version == "" {
		return "unknown"
	}
	v := bi.Main.Version
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev != "" {
		v += " " + rev[:min(len(rev), 12)] + dirty
	}
	return v
}
