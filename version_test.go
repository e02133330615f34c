package warmpool

import (
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestBuildVersion(t *testing.T) {
	const rev = "abc1234def5678abc1234def5678abc1234def56"
	self := func(version string, settings ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: modulePath, Version: version}}
		for i := 0; i+1 < len(settings); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return bi
	}
	dep := func(version string) *debug.BuildInfo {
		return &debug.BuildInfo{
			GoVersion: "go1.26.8",
			Main:      debug.Module{Path: "example.com/app", Version: "(devel)"},
			Deps:      []*debug.Module{{Path: "golang.org/x/sys", Version: "v0.48.0"}, {Path: modulePath, Version: version}},
			Settings:  []debug.BuildSetting{{Key: "vcs.revision", Value: "ffffffffffff"}},
		}
	}
	for _, tc := range []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"no build info", nil, Version + " (" + runtime.Version() + ")"},
		{"devel without vcs", self("(devel)"), Version + " (go1.26.8)"},
		{"devel from a clean checkout", self("(devel)", "vcs.revision", rev, "vcs.modified", "false"), Version + " (go1.26.8, rev abc1234)"},
		{"devel from a dirty checkout", self("(devel)", "vcs.revision", rev, "vcs.modified", "true"), Version + " (go1.26.8, rev abc1234-dirty)"},
		{"go install at the release tag", self("v" + Version), Version + " (go1.26.8)"},
		{"go install at a pseudo-version", self("v0.2.1-0.20260101120000-abc123456789"), Version + " (go1.26.8, module v0.2.1-0.20260101120000-abc123456789)"},
		{"a dependency of another program", dep("v0.1.9"), Version + " (go1.26.8, module v0.1.9)"},
		{"a dependency at the release tag", dep("v" + Version), Version + " (go1.26.8)"},
		{"a replaced dependency", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "example.com/app"},
			Deps: []*debug.Module{{Path: modulePath, Version: "v0.2.0", Replace: &debug.Module{Path: "../warmpool", Version: ""}}}}, Version + " (go1.26.8)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := buildVersion(tc.bi); got != tc.want {
				t.Errorf("buildVersion = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestBuildVersionOfThisBinary(t *testing.T) {
	got := BuildVersion()
	if !strings.HasPrefix(got, Version+" (go") || strings.Contains(got, "devel") {
		t.Errorf("BuildVersion() = %q, want %q then the Go version, and no (devel)", got, Version+" (go…)")
	}
}

func TestVersionIsSemver(t *testing.T) {
	if !regexp.MustCompile(`^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`).MatchString(Version) {
		t.Errorf("Version = %q, want MAJOR.MINOR.PATCH without a leading v", Version)
	}
}
