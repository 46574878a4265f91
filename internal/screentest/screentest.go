// Package screentest waits for what a Bubble Tea screen run as a program
// in a test (teatest) draws; like testwait, it turns a hang into a
// failure and asserts nothing about how long drawing takes.
package screentest

import (
	"bytes"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/teatest"
)

// Timeout bounds every wait, and the wait for a program to finish.
const Timeout = 10 * time.Second

// WaitFor waits until the program's output so far holds every one of
// wants.
func WaitFor(t testing.TB, tm *teatest.TestModel, wants ...string) {
	t.Helper()
	var seen []byte
	Until(t, tm, func(b []byte) bool {
		seen = append(seen, b...)
		for _, w := range wants {
			if !bytes.Contains(seen, []byte(w)) {
				return false
			}
		}
		return true
	})
}

// Until waits until cond, given the output drawn since it was last
// called, returns true.
func Until(t testing.TB, tm *teatest.TestModel, cond func(drawn []byte) bool) {
	t.Helper()
	teatest.WaitFor(t, tm.Output(), cond, teatest.WithDuration(Timeout), teatest.WithCheckInterval(5*time.Millisecond))
}
