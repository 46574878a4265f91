package protocol

import (
	"fmt"
	"time"
)

// MaxIdempotencyKey is the longest Idempotency-Key header, in bytes.
const MaxIdempotencyKey = 64

// ValidateIdempotencyKey checks an Idempotency-Key header: 1 to 64 of
// [A-Za-z0-9._:-].
func ValidateIdempotencyKey(key string) error {
	ok := key != "" && len(key) <= MaxIdempotencyKey
	for i := 0; ok && i < len(key); i++ {
		c := key[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-'
	}
	if !ok {
		return fmt.Errorf("%w: Idempotency-Key %q: use 1 to %d of A-Z a-z 0-9 . _ : -", ErrBadValue, clip(key), MaxIdempotencyKey)
	}
	return nil
}

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
