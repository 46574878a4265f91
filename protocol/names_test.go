package protocol_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/pushd/push/protocol"
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

func TestValidateName(t *testing.T) {
	for _, name := range []string{"a", "lobby", "A-Z_a.z-0.9", "...", "-", strings.Repeat("x", 64)} {
		if err := protocol.ValidateName("room", name); err != nil {
			t.Errorf("ValidateName(%q): %v", name, err)
		}
	}
	for _, name := range []string{"", strings.Repeat("x", 65), "a/b", "a b", "a:b", "é", "a\x00", "a\n", "tab\t", "ü", "a%2Fb", "<b>", ".", ".."} {
		err := protocol.ValidateName("user", name)
		if err == nil {
			t.Errorf("ValidateName(%q) accepted it", name)
			continue
		}
		if !errors.Is(err, protocol.ErrBadName) {
			t.Errorf("ValidateName(%q): %v does not wrap ErrBadName", name, err)
		}
		if !strings.Contains(err.Error(), "user name") {
			t.Errorf("ValidateName(%q): %q does not say what was named", name, err)
		}
	}
	if err := protocol.ValidateName("room", strings.Repeat("y", 5000)); err == nil || len(err.Error()) > 300 {
		t.Errorf("error for a 5,000-byte name: %v", err)
	}
}

// FuzzValidateName: ValidateName never panics and agrees with the rule
// [A-Za-z0-9._-]{1,64}, less "." and "..".
func FuzzValidateName(f *testing.F) {
	for _, seed := range []string{"", "a", "lobby", "a/b", "a b", strings.Repeat("x", 64), strings.Repeat("x", 65), "é", "\xff", "A.b_c-9", ".", "..", "..."} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := protocol.ValidateName("room", name)
		if want := nameRE.MatchString(name) && name != "." && name != ".."; want != (err == nil) {
			t.Fatalf("ValidateName(%q) = %v; the rule says valid=%v", name, err, want)
		}
		if err != nil && !errors.Is(err, protocol.ErrBadName) {
			t.Fatalf("ValidateName(%q): %v does not wrap ErrBadName", name, err)
		}
	})
}

func TestValidateID(t *testing.T) {
	for _, id := range []string{"a", "01J9ZK:3", "host-1.pid_2:17", strings.Repeat("x", 64)} {
		if err := protocol.ValidateID("id", id); err != nil {
			t.Errorf("ValidateID(%q): %v", id, err)
		}
	}
	for _, id := range []string{"", strings.Repeat("x", 65), "a b", "a/b", "é", "a\n", "{x}", "a,b"} {
		err := protocol.ValidateID("Idempotency-Key", id)
		if !errors.Is(err, protocol.ErrBadValue) || !strings.Contains(err.Error(), "Idempotency-Key") {
			t.Errorf("ValidateID(%q) = %v", id, err)
		}
	}
}
