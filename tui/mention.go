package tui

import (
	"slices"
	"strings"
)

// mentions reports whether text names user: the name as a whole word
// (not inside a longer name), in any case, with or without a leading @.
func mentions(text, user string) bool {
	if user == "" {
		return false
	}
	lower, name := strings.ToLower(text), strings.ToLower(user)
	for i := 0; ; {
		j := strings.Index(lower[i:], name)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(name)
		if (start == 0 || !isNameByte(lower[start-1])) && (end == len(lower) || !isNameByte(lower[end])) {
			return true
		}
		i = start + 1
	}
}

// isNameByte reports whether b may be part of a user name
// ([A-Za-z0-9._-]); a name ends at any other byte.
func isNameByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '.' || b == '_' || b == '-'
}

// complete finishes the last word of text (after its last space or line
// break) from names, the word's mark (such as "@") kept in front: the one
// name that starts with the word, in any case, followed by a space, or
// as much as all such names share. It reports whether it changed text.
func complete(text, mark string, names []string) (string, bool) {
	cut := strings.LastIndexAny(text, " \n") + 1
	word, ok := strings.CutPrefix(text[cut:], mark)
	if !ok {
		return text, false
	}
	var found []string
	for _, n := range names {
		if strings.HasPrefix(strings.ToLower(n), strings.ToLower(word)) {
			found = append(found, n)
		}
	}
	slices.Sort(found)
	switch len(found) {
	case 0:
		return text, false
	case 1:
		return text[:cut] + mark + found[0] + " ", true
	}
	common := found[0]
	for _, n := range found[1:] {
		for !strings.HasPrefix(strings.ToLower(n), strings.ToLower(common)) {
			common = common[:len(common)-1]
		}
	}
	if len(common) <= len(word) {
		return text, false
	}
	return text[:cut] + mark + common, true
}
