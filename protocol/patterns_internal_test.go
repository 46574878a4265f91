package protocol

import (
	"path"
	"testing"
)

// Every pattern ValidateRoomPattern accepts matches a valid room name, as
// path.Match sees it, so the grant can be used: the name it found is one.
func FuzzValidateRoomPattern(f *testing.F) {
	for _, seed := range []string{"lobby", "dev-*", "[a-c]?x", "*.*", `\[`, "[^a]", "[0]0[1]0", ".*"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, pattern string) {
		if ValidateRoomPattern(pattern) != nil {
			return
		}
		name, ok := roomMatching(pattern)
		if !ok && !isLiteral(pattern) {
			t.Fatalf("ValidateRoomPattern(%q) accepted it without finding a room it matches", pattern)
		}
		if !ok {
			name = pattern
		}
		if m, err := path.Match(pattern, name); err != nil || !m || ValidateName("room", name) != nil {
			t.Fatalf("ValidateRoomPattern(%q) accepted it; the room %q it found does not match it or is not valid (%v)", pattern, name, err)
		}
	})
}

// isLiteral reports whether pattern has no wildcards: a plain room name.
func isLiteral(pattern string) bool {
	for i := 0; i < len(pattern); i++ {
		switch pattern[i] {
		case '*', '?', '[', '\\':
			return false
		}
	}
	return true
}
