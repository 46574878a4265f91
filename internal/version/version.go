// Package version tells what a pushd or pushtui binary was built from: the
// module version, the commit, and the Go version, read from the build
// information Go stamps into every binary (so a plain go build in a
// checkout shows its commit; no build flags are needed).
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Info is what a binary knows of its build.
type Info struct {
	// Version is the module's version: a tag such as v1.4.0 for a binary
	// installed with go install ...@v1.4.0, a pseudo-version for a build
	// in a checkout, "(devel)" when neither is known.
	Version string
	// Commit is the VCS revision built, "" when unknown (a build outside
	// a checkout, or with -buildvcs=false); Modified says the working
	// tree had changes.
	Commit   string
	Modified bool
	// Time is the commit's time, RFC 3339, "" when unknown.
	Time string
	// Go is the Go version that built the binary, and Platform its
	// GOOS/GOARCH.
	Go, Platform string
}

// Get returns the running binary's build information.
func Get() Info {
	i := Info{Version: "(devel)", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return i
	}
	if v := bi.Main.Version; v != "" {
		i.Version = v
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			i.Commit = s.Value
		case "vcs.time":
			i.Time = s.Value
		case "vcs.modified":
			i.Modified = s.Value == "true"
		}
	}
	return i
}

// String is the one line a program prints for its version:
// "v1.4.0 (commit 1a2b3c4d5e6f, 2026-11-29T10:00:00Z) go1.26.8 linux/amd64".
func (i Info) String() string {
	var b strings.Builder
	b.WriteString(i.Version)
	commit := i.Commit
	if commit == "" {
		commit = "unknown"
	} else if len(commit) > 12 {
		commit = commit[:12]
	}
	fmt.Fprintf(&b, " (commit %s", commit)
	if i.Time != "" {
		b.WriteString(", " + i.Time)
	}
	if i.Modified {
		b.WriteString(", modified")
	}
	fmt.Fprintf(&b, ") %s %s", i.Go, i.Platform)
	return b.String()
}
