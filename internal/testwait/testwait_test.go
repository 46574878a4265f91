package testwait_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pushd/push/internal/testwait"
)

// failed is a TB whose Fatalf records the failure and ends the call, as
// the real one ends the test.
type failed struct {
	testing.TB
	msg string
}

type stop struct{}

func (f *failed) Helper() {}

func (f *failed) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprint(args...)) }

func (f *failed) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(stop{})
}

// run calls fn with a failed TB and returns the failure, "" for none.
func run(t *testing.T, fn func(tb testing.TB)) (msg string) {
	f := &failed{TB: t}
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(stop); !ok {
				panic(r)
			}
			msg = f.msg
		}
	}()
	fn(f)
	return ""
}

func TestUntil(t *testing.T) {
	n := 0
	testwait.Until(t, time.Minute, time.Millisecond, func() error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	msg := run(t, func(tb testing.TB) {
		testwait.Until(tb, 10*time.Millisecond, time.Millisecond, func() error { return errors.New("never") })
	})
	if !strings.Contains(msg, "never") {
		t.Fatalf("failure %q; want the condition's last error", msg)
	}
}

func TestRecv(t *testing.T) {
	ch := make(chan int, 1)
	ch <- 7
	if v, ok := testwait.Recv(t, time.Minute, ch, "value"); v != 7 || !ok {
		t.Fatalf("Recv = %d, %v", v, ok)
	}
	close(ch)
	if _, ok := testwait.Recv(t, time.Minute, ch, "value"); ok {
		t.Fatal("Recv of a closed channel said ok")
	}
	msg := run(t, func(tb testing.TB) { testwait.Recv(tb, 10*time.Millisecond, make(chan int), "answer") })
	if !strings.Contains(msg, "no answer") {
		t.Fatalf("failure %q; want it to name what did not come", msg)
	}
}

func TestHolds(t *testing.T) {
	n := 0
	testwait.Holds(t, 20*time.Millisecond, time.Millisecond, func() error { n++; return nil })
	if n < 2 {
		t.Fatalf("cond called %d times; want it called again and again", n)
	}
	msg := run(t, func(tb testing.TB) {
		calls := 0
		testwait.Holds(tb, time.Minute, time.Millisecond, func() error {
			if calls++; calls == 3 {
				return errors.New("broke")
			}
			return nil
		})
	})
	if msg != "broke" {
		t.Fatalf("failure %q; want the first error", msg)
	}
}
