package version

import (
	"runtime"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	i := Info{Version: "v1.4.0", Commit: "1a2b3c4d5e6f7a8b9c0d", Time: "2026-11-29T10:00:00Z", Modified: true, Go: "go1.26.8", Platform: "linux/amd64"}
	if got, want := i.String(), "v1.4.0 (commit 1a2b3c4d5e6f, 2026-11-29T10:00:00Z, modified) go1.26.8 linux/amd64"; got != want {
		t.Fatalf("String() = %q; want %q", got, want)
	}
	if got, want := (Info{Version: "(devel)", Go: "go1.26.8", Platform: "linux/amd64"}).String(), "(devel) (commit unknown) go1.26.8 linux/amd64"; got != want {
		t.Fatalf("String() = %q; want %q", got, want)
	}
}

// A test binary has build information, with the Go version that built it.
func TestGet(t *testing.T) {
	i := Get()
	if i.Go != runtime.Version() || i.Version == "" || !strings.Contains(i.Platform, "/") {
		t.Fatalf("Get() = %+v", i)
	}
}
