package main

import (
	"fmt"
	"path"
	"strings"
	"sync"

	"github.com/pushd/push/protocol"
)

// parseRooms splits a --rooms value into the rooms and patterns a token
// grants, refusing any that no room can ever match: the server refuses a
// room whose name breaks protocol.ValidateName before it looks at a token.
func parseRooms(value string) ([]string, error) {
	if strings.TrimSpace(value) == "" {
		return nil, usagef("--rooms is empty: name the rooms the token may use, e.g. --rooms 'lobby,dev-*', or leave --rooms out for a token that may use no room")
	}
	var rooms []string
	for i, r := range strings.Split(value, ",") {
		r = strings.TrimSpace(r)
		if r == "" {
			return nil, usagef("--rooms %q: room %d is empty; separate rooms with one comma, e.g. --rooms 'lobby,dev-*'", value, i+1)
		}
		if err := checkRoomPattern(r); err != nil {
			return nil, usageErr(err)
		}
		rooms = append(rooms, r)
	}
	return rooms, nil
}

// checkRoomPattern returns an error naming pattern and the rule for room
// names when pattern (a room name, or a path.Match pattern of them) can
// match no valid room name.
func checkRoomPattern(pattern string) error {
	if !strings.ContainsAny(pattern, `*?[\`) {
		if err := protocol.ValidateName("room", pattern); err != nil {
			return fmt.Errorf("--rooms: %s", nameRule(err))
		}
		return nil
	}
	if _, err := path.Match(pattern, ""); err != nil {
		return fmt.Errorf("--rooms: pattern %q: %w; use * for any run of characters, ? for one, [abc] or [a-z] for one of a set", pattern, err)
	}
	if _, ok := roomMatching(pattern); !ok {
		return fmt.Errorf("--rooms: pattern %q matches no room; %s, and * ? [...] in patterns", pattern, nameRule(protocol.ValidateName("room", pattern)))
	}
	return nil
}

// nameRule returns the message of an error from protocol.ValidateName
// without the "bad name: " it starts with.
func nameRule(err error) string {
	return strings.TrimPrefix(err.Error(), protocol.ErrBadName.Error()+": ")
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
			b = append(b, nameChars()[0])
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
	if star >= 0 && protocol.ValidateName("room", name) != nil && strings.Trim(name, ".") == "" {
		// Only dots (or nothing): a * can add a letter.
		name = name[:star] + string(nameChars()[0]) + name[star:]
	}
	if protocol.ValidateName("room", name) != nil {
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

// nameCharIn returns a character of room names that class, a path.Match
// character class, matches; a character other than a dot if it can.
func nameCharIn(class string) (byte, bool) {
	for _, c := range nameChars() {
		if ok, _ := path.Match(class, string(c)); ok {
			return c, true
		}
	}
	return 0, false
}

// nameChars returns the characters protocol.ValidateName allows in a room
// name, the dot last.
var nameChars = sync.OnceValue(func() []byte {
	var chars, dot []byte
	for c := byte(0); c < 128; c++ {
		switch {
		case protocol.ValidateName("room", "a"+string(c)) != nil:
		case c == '.':
			dot = append(dot, c)
		default:
			chars = append(chars, c)
		}
	}
	return append(chars, dot...)
})
