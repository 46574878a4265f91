package protocol_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pushd/push/protocol"
)

func TestValidateTaskName(t *testing.T) {
	for _, ok := range []string{"", "build #42", "héllo", strings.Repeat("x", protocol.MaxTaskNameBytes)} {
		if err := protocol.ValidateTaskName(ok); err != nil {
			t.Errorf("ValidateTaskName(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{strings.Repeat("x", protocol.MaxTaskNameBytes+1), "a\nb", "\x1b[2J", "a\xffb"} {
		err := protocol.ValidateTaskName(bad)
		if !errors.Is(err, protocol.ErrBadValue) || !strings.Contains(err.Error(), "200 bytes") {
			t.Errorf("ValidateTaskName(%q) = %v", bad, err)
		}
	}
}

func TestValidateTaskMessage(t *testing.T) {
	if err := protocol.ValidateTaskMessage(strings.Repeat("m", protocol.MaxTaskMessageBytes)); err != nil {
		t.Errorf("a message of the limit: %v", err)
	}
	for _, bad := range []string{strings.Repeat("m", protocol.MaxTaskMessageBytes+1), "\xff"} {
		if err := protocol.ValidateTaskMessage(bad); !errors.Is(err, protocol.ErrBadValue) {
			t.Errorf("ValidateTaskMessage(%q) = %v", bad, err)
		}
	}
}

func TestValidateDemo(t *testing.T) {
	for _, c := range []struct {
		total    int64
		interval time.Duration
		ok       bool
	}{
		{1, time.Millisecond, true},
		{protocol.DemoMaxTotal, time.Hour, true},
		{0, 50 * time.Millisecond, false},
		{protocol.DemoMaxTotal + 1, 50 * time.Millisecond, false},
		{10, time.Microsecond, false},
		{10, 2 * time.Hour, false},
	} {
		err := protocol.ValidateDemo(c.total, c.interval)
		if (err == nil) != c.ok {
			t.Errorf("ValidateDemo(%d, %v) = %v", c.total, c.interval, err)
		}
	}
}

func TestErrorTemporary(t *testing.T) {
	for status, want := range map[int]bool{400: false, 401: false, 403: false, 404: false, 409: false, 413: false,
		408: true, 429: true, 500: true, 502: true, 503: true} {
		if got := (&protocol.Error{Status: status}).Temporary(); got != want {
			t.Errorf("status %d: Temporary() = %v", status, got)
		}
	}
	e := protocol.Errorf(503, protocol.CodeUnavailable, "away %d", 1).RetryIn(2 * time.Second)
	if e.RetryAfter != 2*time.Second || e.Message != "away 1" || e.Body().Error.Code != protocol.CodeUnavailable {
		t.Fatalf("Errorf/RetryIn/Body: %+v", e)
	}
	if got := (&protocol.Error{Status: 404, Message: "unexpected answer 404"}).Error(); got != "unexpected answer 404 (404)" {
		t.Fatalf("an error without a code reads %q", got)
	}
}

func TestValidateDemoNamesTheBoundsAsPeopleWriteThem(t *testing.T) {
	err := protocol.ValidateDemo(10, 2*time.Hour)
	if err == nil || !strings.Contains(err.Error(), "from 1ms to 1h") {
		t.Fatalf("ValidateDemo with 2h: %v", err)
	}
}
