package protocol

import (
	"errors"
	"fmt"
)

// ErrBadName is returned (wrapped) by ValidateName.
var ErrBadName = errors.New("bad name")

// MaxNameLen is the longest room or user name.
const MaxNameLen = 64

// ValidateName checks a room or user name: 1 to 64 of [A-Za-z0-9._-], and
// not "." or ".." (which are path segments).
// what names the thing in the error ("room", "user").
func ValidateName(what, name string) error {
	if name == "" {
		return fmt.Errorf("%w: %s name is empty; use 1 to %d of A-Z a-z 0-9 . _ -", ErrBadName, what, MaxNameLen)
	}
	if len(name) > MaxNameLen || !nameChars(name) {
		return fmt.Errorf("%w: %s name %q: use 1 to %d of A-Z a-z 0-9 . _ -", ErrBadName, what, clip(name), MaxNameLen)
	}
	if name == "." || name == ".." {
		return fmt.Errorf("%w: %s name %q: a name cannot be only dots", ErrBadName, what, name)
	}
	return nil
}

func nameChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// MaxIDLen is the longest message ID or idempotency key.
const MaxIDLen = 64

// ValidateID checks a message ID or an idempotency key: 1 to 64 of
// [A-Za-z0-9._:-]. what names it in the error ("id", "Idempotency-Key").
func ValidateID(what, id string) error {
	if id == "" || len(id) > MaxIDLen {
		return fmt.Errorf("%w: %s %q: use 1 to %d of A-Z a-z 0-9 . _ : -", ErrBadValue, what, clip(id), MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c != ':' && !nameChars(id[i:i+1]) {
			return fmt.Errorf("%w: %s %q: use 1 to %d of A-Z a-z 0-9 . _ : - (not %q)", ErrBadValue, what, clip(id), MaxIDLen, rune(c))
		}
	}
	return nil
}
