// Package buildinfo describes the running binary: its version and commit
// (set at link time in cmd/whorl, else the module's VCS stamp), its Go
// version and platform (`whorl version`).
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// Info describes a binary.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

// Current describes this binary, whose version and commit the linker set
// (commit "": the VCS revision the go command stamped, else "unknown").
func Current(version, commit string) Info {
	b := Info{Version: version, Commit: commit, GoVersion: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if b.Commit == "" {
		b.Commit = "unknown"
		if info, ok := debug.ReadBuildInfo(); ok {
			for _, s := range info.Settings {
				if s.Key == "vcs.revision" {
					b.Commit = s.Value
				}
			}
		}
	}
	return b
}

// String is the one-line form `whorl version` prints.
func (b Info) String() string {
	return "whorl " + b.Version + " (commit " + b.Commit + ", " + b.GoVersion + ", " + b.Platform + ")"
}
