package protocol

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits of the wire contract that both ends check: the server refuses
// what is outside them, and clients may check first to say so sooner.
const (
	// MaxPollEvents is the most events one poll answers.
	MaxPollEvents = 1000
	// MaxTaskNameBytes is the longest task name, in bytes.
	MaxTaskNameBytes = 200
	// MaxTaskMessageBytes is the longest message of a progress report,
	// in bytes.
	MaxTaskMessageBytes = 1024
)

// The demo task kind's bounds: its steps, and the time each takes.
const (
	DemoMaxTotal    = 1_000_000
	DemoMinInterval = time.Millisecond
	DemoMaxInterval = time.Hour
)

// ErrBadValue is returned (wrapped) by the validators of task fields.
var ErrBadValue = errors.New("bad value")

// ValidateTaskName checks a task's name: printable UTF-8 text of at most
// MaxTaskNameBytes bytes (it may be empty).
func ValidateTaskName(name string) error {
	if len(name) > MaxTaskNameBytes || !utf8.ValidString(name) || strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return fmt.Errorf("%w: name must be printable UTF-8 text of at most %d bytes", ErrBadValue, MaxTaskNameBytes)
	}
	return nil
}

// ValidateTaskMessage checks the message of a progress report: UTF-8 of
// at most MaxTaskMessageBytes bytes.
func ValidateTaskMessage(msg string) error {
	if len(msg) > MaxTaskMessageBytes || !utf8.ValidString(msg) {
		return fmt.Errorf("%w: message must be valid UTF-8 of at most %d bytes", ErrBadValue, MaxTaskMessageBytes)
	}
	return nil
}

// ValidateDemo checks a demo task's steps and the time per step.
func ValidateDemo(total int64, interval time.Duration) error {
	if total < 1 || total > DemoMaxTotal {
		return fmt.Errorf("%w: total must be from 1 to %d, not %d", ErrBadValue, DemoMaxTotal, total)
	}
	if interval < DemoMinInterval || interval > DemoMaxInterval {
		return fmt.Errorf("%w: interval %s: give a duration from 1ms to 1h, such as \"50ms\"", ErrBadValue, interval)
	}
	return nil
}
