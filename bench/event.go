package bench

import (
	"bytes"
	"errors"
	"math"
	"strconv"
)

// A message's text is "<run>:<publisher>:<seq>:<sent unix nanos>:" padded
// with 'x' to the wanted size. The run keeps apart the messages of runs
// that share a room.

// appendPayload appends the text of message seq of publisher pub, sent at
// sent, padded to size bytes.
func appendPayload(dst []byte, run string, pub, seq int, sent int64, size int) []byte {
	start := len(dst)
	dst = append(dst, run...)
	dst = append(dst, ':')
	dst = strconv.AppendInt(dst, int64(pub), 10)
	dst = append(dst, ':')
	dst = strconv.AppendInt(dst, int64(seq), 10)
	dst = append(dst, ':')
	dst = strconv.AppendInt(dst, sent, 10)
	dst = append(dst, ':')
	for len(dst)-start < size {
		dst = append(dst, 'x')
	}
	return dst
}

// stamp is what a message's text says about it.
type stamp struct {
	pub, seq int
	sent     int64
}

// parsePayload reads the header of a text that starts with run's prefix;
// false for any other text. Only the header is read, so text may run on
// past the end of the JSON string.
func parsePayload(text []byte, run string) (stamp, bool) {
	if len(text) <= len(run) || string(text[:len(run)]) != run || text[len(run)] != ':' {
		return stamp{}, false
	}
	rest := text[len(run)+1:]
	var fields [3]uint64
	for i := range fields {
		n, tail, ok := leadingUint(rest)
		if !ok || n > math.MaxInt64 || len(tail) == 0 || tail[0] != ':' {
			return stamp{}, false
		}
		fields[i], rest = n, tail[1:]
	}
	return stamp{pub: int(fields[0]), seq: int(fields[1]), sent: int64(fields[2])}, true
}

// eventView is what the bench needs of an event's JSON, as slices of it.
type eventView struct {
	seq   uint64
	epoch []byte
	typ   []byte
	text  []byte // from the start of the text to the end of the event; nil without text
}

var (
	keySeq   = []byte(`"seq":`)
	keyEpoch = []byte(`"epoch":"`)
	keyType  = []byte(`"type":"`)
	keyText  = []byte(`"text":"`)
)

// errMalformed is an event the bench cannot read.
var errMalformed = errors.New("malformed event")

// scanEvent finds seq, epoch, type and the start of text in one event's
// JSON without decoding all of it: a 16 KiB text is not copied or
// unescaped per subscriber. A key found this way is a real key, as a quote
// inside a JSON string is always escaped. Room events have no nested
// objects, so the first match is the event's own field.
func scanEvent(b []byte) (eventView, error) {
	var ev eventView
	i := bytes.Index(b, keySeq)
	if i < 0 {
		return ev, errMalformed
	}
	seq, _, ok := leadingUint(b[i+len(keySeq):])
	if !ok {
		return ev, errMalformed
	}
	ev.seq = seq
	if ev.epoch = stringAfter(b, keyEpoch); ev.epoch == nil {
		return ev, errMalformed
	}
	if ev.typ = stringAfter(b, keyType); ev.typ == nil {
		return ev, errMalformed
	}
	if i := bytes.Index(b, keyText); i >= 0 {
		ev.text = b[i+len(keyText):]
	}
	return ev, nil
}

// stringAfter returns the string value after key, which has no escapes
// (epochs and types are made of name characters); nil if there is none.
func stringAfter(b, key []byte) []byte {
	i := bytes.Index(b, key)
	if i < 0 {
		return nil
	}
	v := b[i+len(key):]
	j := bytes.IndexByte(v, '"')
	if j < 0 {
		return nil
	}
	return v[:j:j]
}

// leadingUint parses the decimal digits at the start of b; false if there
// are none or they overflow.
func leadingUint(b []byte) (uint64, []byte, bool) {
	var n uint64
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		d := uint64(b[i] - '0')
		if n > (math.MaxUint64-d)/10 {
			return 0, b, false
		}
		n = n*10 + d
	}
	return n, b[i:], i > 0
}
