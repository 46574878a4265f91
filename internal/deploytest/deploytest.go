// Package deploytest checks the deployments README.md documents against
// real parts: pushd behind nginx and behind Caddy, with the configuration
// blocks of README's "Deploying" section, over every transport. Its tests
// fail, not skip, when nginx or caddy is not installed (PUSHD_NGINX and
// PUSHD_CADDY may name the binaries).
package deploytest

import (
	"fmt"
	"os"
	"strings"
)

// ReadmeBlock returns the n-th (from 0) fenced code block of the given
// language in the section of markdown that starts with heading.
func ReadmeBlock(markdown, heading, lang string, n int) (string, error) {
	start := strings.Index(markdown, "\n"+heading+"\n")
	if start < 0 {
		return "", fmt.Errorf("no section %q", heading)
	}
	section := markdown[start+len(heading)+2:]
	level := heading[:strings.IndexByte(heading, ' ')+1]
	if end := nextHeading(section, len(level)-1); end >= 0 {
		section = section[:end]
	}
	fence := "```" + lang + "\n"
	for i := 0; ; i++ {
		at := strings.Index(section, fence)
		if at < 0 {
			return "", fmt.Errorf("section %q has no block %d of %s", heading, n, lang)
		}
		section = section[at+len(fence):]
		end := strings.Index(section, "```")
		if end < 0 {
			return "", fmt.Errorf("section %q: block of %s not closed", heading, lang)
		}
		if i == n {
			return section[:end], nil
		}
		section = section[end+3:]
	}
}

// nextHeading is where the next heading of at most level #s starts in s,
// or -1; lines in fenced code blocks are not headings.
func nextHeading(s string, level int) int {
	off, fenced := 0, false
	for line := range strings.SplitAfterSeq(s, "\n") {
		switch {
		case strings.HasPrefix(line, "```"):
			fenced = !fenced
		case !fenced && strings.HasPrefix(line, "#"):
			hashes := len(line) - len(strings.TrimLeft(line, "#"))
			if hashes <= level && strings.HasPrefix(line[hashes:], " ") {
				return off
			}
		}
		off += len(line)
	}
	return -1
}

// Readme returns the repository's README.md, read from dir's parents.
func Readme(dir string) (string, error) {
	for range 4 {
		b, err := os.ReadFile(dir + "/README.md")
		if err == nil {
			return string(b), nil
		}
		dir += "/.."
	}
	return "", fmt.Errorf("README.md not found above %s", dir)
}
