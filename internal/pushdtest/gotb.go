package pushdtest

import (
	"runtime"
	"testing"
)

// GoTB lets helpers that call Fatal run on goroutines a test starts:
// Fatal reports with Errorf, which is safe from any goroutine, and ends
// only the calling goroutine (its deferred calls run).
type GoTB struct{ testing.TB }

// Fatal reports args as an error and ends the calling goroutine.
func (g GoTB) Fatal(args ...any) {
	g.TB.Helper()
	g.TB.Error(args...)
	runtime.Goexit()
}

// Fatalf reports a formatted error and ends the calling goroutine.
func (g GoTB) Fatalf(format string, args ...any) {
	g.TB.Helper()
	g.TB.Errorf(format, args...)
	runtime.Goexit()
}

// FailNow marks the test failed and ends the calling goroutine.
func (g GoTB) FailNow() {
	g.TB.Fail()
	runtime.Goexit()
}
