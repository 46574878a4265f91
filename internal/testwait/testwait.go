// Package testwait waits in tests for something to become so, turning a
// hang into a failure; nothing in it asserts how long things take.
package testwait

import (
	"testing"
	"time"
)

// Until calls cond every interval until it returns nil, and fails the test
// with cond's last error if that has not happened within timeout.
func Until(t testing.TB, timeout, interval time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not so after %v: %v", timeout, err)
		}
		time.Sleep(interval)
	}
}
