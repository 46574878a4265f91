package protocol

import (
	"fmt"
	"path"
	"strings"
)

// ValidateRoomPattern checks a room a token grants: a room name, or a
// path.Match pattern of them (* ? [...]). It refuses a malformed pattern,
// and one that no valid room name matches, since such a grant could never
// be used; the error says why, in terms of the naming rule.
func ValidateRoomPattern(pattern string) error {
	if !strings.ContainsAny(pattern, `*?[\`) {
		return ValidateName("room", pattern)
	}
	if _, err := path.Match(pattern, ""); err != nil {
		return fmt.Errorf("%w: room pattern %q: %v; use * for any run of characters, ? for one, [abc] or [a-z] for one of a set", ErrBadName, pattern, err)
	}
	if _, ok := roomMatching(pattern); !ok {
		return fmt.Errorf("%w: room pattern %q matches no room; room names use 1 to %d of A-Z a-z 0-9 . _ - (not only dots)", ErrBadName, clip(pattern), MaxNameLen)
	}
	return nil
}

// roomMatching returns a valid room name that pattern, a well-formed
// path.Match pattern, matches, or false if there is none.
func roomMatching(pattern string) (string, bool) {
	var b []byte
	star := -1 // where in b the first * was
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; c {
		case '*':
			if star < 0 {
				star = len(b)
			}
		case '?':
			b = append(b, 'a')
		case '[':
			end := classEnd(pattern, i)
			c, ok := nameCharIn(pattern[i : end+1])
			if !ok {
				return "", false
			}
			b = append(b, c)
			i = end
		case '\\':
			i++
			fallthrough
		default:
			b = append(b, pattern[i])
		}
	}
	name := string(b)
	if star >= 0 && ValidateName("room", name) != nil && strings.Trim(name, ".") == "" {
		// Only dots (or nothing): a * can add a letter.
		name = name[:star] + "a" + name[star:]
	}
	if ValidateName("room", name) != nil {
		return "", false
	}
	return name, true
}

// classEnd returns the index of the ] that closes the character class
// opening at pattern[start] of a well-formed path.Match pattern: the first
// one not escaped (path.Match refuses a bare ] inside a class).
func classEnd(pattern string, start int) int {
	for i := start + 1; i < len(pattern); i++ {
		switch pattern[i] {
		case ']':
			return i
		case '\\':
			i++
		}
	}
	return len(pattern) - 1
}

// nameCharIn returns a character allowed in names that class, a path.Match
// character class, matches; one other than a dot if it can.
func nameCharIn(class string) (byte, bool) {
	for _, c := range []byte(nameAlphabet) {
		if ok, _ := path.Match(class, string(c)); ok {
			return c, true
		}
	}
	return 0, false
}

// nameAlphabet is every character allowed in names, the dot last.
const nameAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-."
