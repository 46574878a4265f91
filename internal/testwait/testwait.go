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

// Recv returns the next value from ch, and false if ch is closed, failing
// the test if neither happens within timeout. what names the value for
// the failure.
func Recv[T any](t testing.TB, timeout time.Duration, ch <-chan T, what string) (T, bool) {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case v, ok := <-ch:
		return v, ok
	case <-timer.C:
		t.Fatalf("no %s after %v", what, timeout)
		var zero T
		return zero, false
	}
}

// Holds calls cond every interval for the span d, and fails the test with
// its error as soon as it returns one: for what must stay so, such as
// "exactly one final event" while a sweep runs again and again.
func Holds(t testing.TB, d, interval time.Duration, cond func() error) {
	t.Helper()
	end := time.Now().Add(d)
	for {
		if err := cond(); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(end) {
			return
		}
		time.Sleep(interval)
	}
}
