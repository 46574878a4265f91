package protocol

import (
	"errors"
	"fmt"
	"time"
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

// ValidateTaskName checks a task's name: text on one line (see
// ValidateText) of at most MaxTaskNameBytes bytes (it may be empty).
func ValidateTaskName(name string) error {
	if len(name) > MaxTaskNameBytes {
		return fmt.Errorf("%w: name is %d bytes; it must be printable UTF-8 text of at most %d bytes", ErrBadValue, len(name), MaxTaskNameBytes)
	}
	if err := ValidateText("name", name, false); err != nil {
		return fmt.Errorf("%w; a name must be printable UTF-8 text of at most %d bytes", err, MaxTaskNameBytes)
	}
	return nil
}

// ValidateTaskMessage checks the message of a progress report: text that
// may hold newlines and tabs (see ValidateText), of at most
// MaxTaskMessageBytes bytes.
func ValidateTaskMessage(msg string) error {
	if len(msg) > MaxTaskMessageBytes {
		return fmt.Errorf("%w: message is %d bytes; it must be valid UTF-8 of at most %d bytes", ErrBadValue, len(msg), MaxTaskMessageBytes)
	}
	return ValidateText("message", msg, true)
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
