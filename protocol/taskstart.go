package protocol

import (
	"fmt"
	"time"
)

// The bounds of a task's cancel_unwatched.
const (
	MinCancelUnwatched = time.Second
	MaxCancelUnwatched = 24 * time.Hour
)

// ParseCancelUnwatched reads a task's cancel_unwatched: a Go duration
// from MinCancelUnwatched to MaxCancelUnwatched.
func ParseCancelUnwatched(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < MinCancelUnwatched || d > MaxCancelUnwatched {
		return 0, fmt.Errorf("%w: cancel_unwatched %q: give a duration from 1s to 24h, such as \"30s\"", ErrBadValue, clip(s))
	}
	return d, nil
}
