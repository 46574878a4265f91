package protocol_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/pushd/push/protocol"
)

func TestValidateRoomPattern(t *testing.T) {
	for _, p := range []string{"lobby", "dev-*", "*", "?", "[a-z]*", ".*", "*.", "team-[0-9]?", strings.Repeat("x", 64) + "*", `a\-b`} {
		if err := protocol.ValidateRoomPattern(p); err != nil {
			t.Errorf("ValidateRoomPattern(%q): %v", p, err)
		}
	}
	for _, p := range []string{"", "dev *", "dev-[", "[!a-zA-Z0-9._-]", "é*", strings.Repeat("x", 65), strings.Repeat("x", 64) + "?", `a\*`, "..", "[.]"} {
		err := protocol.ValidateRoomPattern(p)
		if err == nil {
			t.Errorf("ValidateRoomPattern(%q) accepted a pattern no room matches", p)
			continue
		}
		if !errors.Is(err, protocol.ErrBadName) {
			t.Errorf("ValidateRoomPattern(%q): %v does not wrap ErrBadName", p, err)
		}
	}
}
