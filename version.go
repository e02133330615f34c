package warmpool

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Version is the warmpool release this code belongs to. It is bumped, by
// hand, in the commit that makes each release, and is the version the
// OpenTelemetry meter of package otel reports.
const Version = "0.2.0"

// modulePath is the path of warmpool's module in build info.
const modulePath = "github.com/warmpool/warmpool"

// BuildVersion describes the running build of warmpool: Version, then in
// parentheses the Go version, the module version when the build knows one
// that says more than Version (a pseudo-version, or a tag other than
// "v"+Version), and the VCS revision when warmpool is the main module built
// from a checkout, shortened, with "-dirty" if the tree had changes. It never
// shows "(devel)", the placeholder go build puts for an untagged main module:
//
//	0.2.0 (go1.26.8)
//	0.2.0 (go1.26.8, rev abc1234-dirty)
//	0.2.0 (go1.26.8, module v0.2.1-0.20260101120000-abc123456789)
func BuildVersion() string {
	bi, _ := debug.ReadBuildInfo() // nil when the binary has none
	return buildVersion(bi)
}

// buildVersion is BuildVersion for the build info bi, nil if there is none.
func buildVersion(bi *debug.BuildInfo) string {
	goVersion := runtime.Version()
	var mod *debug.Module
	if bi != nil {
		if bi.GoVersion != "" {
			goVersion = bi.GoVersion
		}
		if bi.Main.Path == modulePath {
			mod = &bi.Main
		}
		for _, d := range bi.Deps {
			if d.Path == modulePath {
				mod = d
			}
		}
	}
	parts := []string{goVersion}
	if mod != nil {
		if mod.Replace != nil && mod.Replace.Version != "" {
			mod = mod.Replace
		}
		if v := mod.Version; v != "" && v != "(devel)" && v != "v"+Version {
			parts = append(parts, "module "+v)
		}
	}
	// VCS settings describe the main module only: for a program that
	// imports warmpool they are the program's revision, not warmpool's.
	if bi != nil && bi.Main.Path == modulePath {
		var rev string
		dirty := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" {
			rev = rev[:min(len(rev), 7)]
			if dirty {
				rev += "-dirty"
			}
			parts = append(parts, "rev "+rev)
		}
	}
	return fmt.Sprintf("%s (%s)", Version, strings.Join(parts, ", "))
}
