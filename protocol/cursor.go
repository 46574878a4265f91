package protocol

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrBadCursor is returned (wrapped) by ParseCursor for text that is not a cursor.
var ErrBadCursor = errors.New("bad cursor")

// Cursor is a position in a stream: "everything up to and including Seq in
// Epoch". An empty Epoch means the stream's current epoch.
type Cursor struct {
	Epoch string
	Seq   uint64
}

// String formats c as "<epoch>:<seq>", or "<seq>" when it has no epoch.
func (c Cursor) String() string {
	if c.Epoch == "" {
		return strconv.FormatUint(c.Seq, 10)
	}
	return c.Epoch + ":" + strconv.FormatUint(c.Seq, 10)
}

// maxEpochLen bounds the epoch part of a cursor.
const maxEpochLen = 64

// ParseCursor parses "<epoch>:<seq>" or a bare "<seq>". The epoch is opaque
// but made of name characters ([A-Za-z0-9._-]), at most 64 of them.
func ParseCursor(s string) (Cursor, error) {
	epoch, seq, found := strings.Cut(s, ":")
	if !found {
		seq, epoch = epoch, ""
	} else if epoch == "" || len(epoch) > maxEpochLen || !nameChars(epoch) {
		return Cursor{}, fmt.Errorf("%w %q: the epoch before ':' must be 1 to %d of [A-Za-z0-9._-]", ErrBadCursor, clip(s), maxEpochLen)
	}
	if seq == "" || seq[0] == '+' || seq[0] == '-' {
		return Cursor{}, fmt.Errorf("%w %q: want <epoch>:<seq> or <seq>, seq a whole number", ErrBadCursor, clip(s))
	}
	n, err := strconv.ParseUint(seq, 10, 64)
	if errors.Is(err, strconv.ErrRange) {
		return Cursor{}, fmt.Errorf("%w %q: seq is too large (at most %d)", ErrBadCursor, clip(s), uint64(math.MaxUint64))
	}
	if err != nil {
		return Cursor{}, fmt.Errorf("%w %q: want <epoch>:<seq> or <seq>, seq a whole number", ErrBadCursor, clip(s))
	}
	return Cursor{Epoch: epoch, Seq: n}, nil
}

// clip keeps error messages short when the input is long.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
