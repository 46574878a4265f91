// Package sse reads Server-Sent Events streams as the HTML standard says
// (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation):
// lines end in CRLF, LF or a lone CR; a line starting with ':' is a
// comment; "field: value" loses one space after the colon, and a line
// without a colon is a field with an empty value; data lines are joined
// with "\n"; a blank line dispatches the event unless it has no data; the
// id field persists from event to event (unless it holds a NUL); retry
// sets the reconnection time when it is all ASCII digits; other fields are
// ignored; a byte order mark at the start is skipped, and an event cut off
// by the end of the stream is not dispatched.
//
// A Reader reuses its buffers from event to event and, with Reset, from
// connection to connection: reading an event allocates nothing once the
// buffers have grown to the stream's events.
package sse

import (
	"bytes"
	"errors"
	"io"
	"time"
)

// ErrLineTooLong is returned by Next for a line longer than the Reader's
// limit.
var ErrLineTooLong = errors.New("sse: line too long")

// Event is one dispatched event. Its slices are the Reader's: they stay
// valid only until the next call to Next or Reset, and must not be
// modified.
type Event struct {
	// Type is the event field, "message" when there was none.
	Type []byte
	// Data is the data lines joined by "\n".
	Data []byte
	// ID is the last event ID at dispatch: the last id field so far, in
	// this event or an earlier one.
	ID []byte
}

// Reader reads the events of a stream. It is not safe for concurrent use.
type Reader struct {
	src     io.Reader
	buf     []byte // read buffer: buf[r:w] is read and not yet parsed
	r, w    int
	err     error // the error that ended src, returned once buf[r:w] is parsed
	maxLine int
	long    []byte // the start of a line whose end is not in buf yet
	typ     []byte // the event type buffer
	data    []byte // the data buffer
	hasData bool
	id      []byte // the last event ID
	retry   time.Duration
	start   bool // nothing read yet: a byte order mark may come
	skipLF  bool // the last line ended in CR: an LF next is part of it
}

var typeMessage = []byte("message")

// bigBuffer is the size above which a buffer that grew for one large event
// is let go after it, so that an idle reader holds little.
const bigBuffer = 256 << 10

// NewReader returns a Reader of src with a read buffer of size bytes
// (lines longer than that are gathered in a buffer of their own), that
// refuses lines longer than maxLine bytes (0: no limit).
func NewReader(src io.Reader, size, maxLine int) *Reader {
	return &Reader{src: src, buf: make([]byte, max(size, minBuffer)), maxLine: maxLine, start: true}
}

// minBuffer is the smallest read buffer: room for a byte order mark.
const minBuffer = 16

// Reset makes r read a new stream from src, keeping its buffers. The last
// event ID and the reconnection time carry over, as an EventSource's do
// from connection to connection.
func (r *Reader) Reset(src io.Reader) {
	r.src, r.r, r.w, r.err = src, 0, 0, nil
	r.typ, r.data, r.long = r.typ[:0], r.data[:0], r.long[:0]
	r.hasData, r.start, r.skipLF = false, true, false
}

// Retry returns the reconnection time the stream last asked for (the
// retry field), 0 if it never did.
func (r *Reader) Retry() time.Duration { return r.retry }

// LastID returns the last event ID read (the id field), "" if none.
func (r *Reader) LastID() string { return string(r.id) }

// Next returns the next event. At the end of the stream it returns io.EOF
// (an event cut off by the end is dropped); a read error is returned as
// it is, and ErrLineTooLong for a line over the limit.
func (r *Reader) Next() (Event, error) {
	if cap(r.data) > bigBuffer {
		r.data = nil
	}
	if cap(r.long) > bigBuffer {
		r.long = nil
	}
	for {
		line, err := r.readLine()
		if err != nil {
			return Event{}, err
		}
		if len(line) == 0 {
			if !r.hasData {
				r.typ = r.typ[:0]
				continue
			}
			ev := Event{Type: r.typ, Data: r.data, ID: r.id}
			if len(ev.Type) == 0 {
				ev.Type = typeMessage
			}
			r.typ, r.data, r.hasData = r.typ[:0], r.data[:0], false
			return ev, nil
		}
		if line[0] == ':' {
			continue // a comment
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "event":
			r.typ = append(r.typ[:0], value...)
		case "data":
			if r.hasData {
				r.data = append(r.data, '\n')
			}
			r.data, r.hasData = append(r.data, value...), true
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				r.id = append(r.id[:0], value...)
			}
		case "retry":
			if ms, ok := digits(value); ok {
				r.retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
}

// maxRetry bounds the retry field: about 49 days, beyond any use.
const maxRetry = 1<<32 - 1

// digits parses b when it is one or more ASCII digits, up to maxRetry.
func digits(b []byte) (uint64, bool) {
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		if n = n*10 + uint64(c-'0'); n > maxRetry {
			return 0, false
		}
	}
	return n, len(b) > 0
}

// readLine returns the next line without its line end, valid until the
// next read. It returns a line as soon as its end has arrived: a CR is
// taken as the end at once, and an LF right after it is skipped.
func (r *Reader) readLine() ([]byte, error) {
	r.long = r.long[:0]
	for {
		buf := r.buf[r.r:r.w]
		if r.skipLF && len(buf) > 0 {
			r.skipLF = false
			if buf[0] == '\n' {
				r.r++
				continue
			}
		}
		if r.start && (len(buf) >= len(bom) || !bytes.HasPrefix(bom, buf) || r.err != nil) {
			// Past where a byte order mark would end, or sure it is none.
			r.start = false
			if bytes.HasPrefix(buf, bom) {
				r.r += len(bom)
				continue
			}
		}
		if !r.start {
			// A line ends at the first LF, or at a CR before it.
			end := bytes.IndexByte(buf, '\n')
			scan := buf
			if end >= 0 {
				scan = buf[:end]
			}
			if cr := bytes.IndexByte(scan, '\r'); cr >= 0 {
				end = cr
			}
			if end >= 0 {
				line := buf[:end]
				if r.maxLine > 0 && len(r.long)+len(line) > r.maxLine {
					return nil, ErrLineTooLong
				}
				r.r += end + 1
				if buf[end] == '\r' {
					if end+1 < len(buf) {
						if buf[end+1] == '\n' {
							r.r++
						}
					} else {
						r.skipLF = true
					}
				}
				if len(r.long) > 0 {
					r.long = append(r.long, line...)
					line = r.long
				}
				return line, nil
			}
			// No line end yet: keep what there is of the line.
			if r.maxLine > 0 && len(r.long)+len(buf) > r.maxLine {
				return nil, ErrLineTooLong
			}
			r.long = append(r.long, buf...)
			r.r = r.w
		}
		if r.err != nil {
			return nil, r.err // at io.EOF, a last line without its end is dropped with its event
		}
		r.fill()
	}
}

var bom = []byte("\xEF\xBB\xBF")

// maxEmptyReads is how many reads in a row may return nothing before fill
// gives up with io.ErrNoProgress.
const maxEmptyReads = 100

// fill reads more into the buffer, after what is there.
func (r *Reader) fill() {
	if r.r > 0 {
		r.w = copy(r.buf, r.buf[r.r:r.w])
		r.r = 0
	}
	for range maxEmptyReads {
		n, err := r.src.Read(r.buf[r.w:])
		r.w += n
		if err != nil {
			r.err = err
			return
		}
		if n > 0 {
			return
		}
	}
	r.err = io.ErrNoProgress
}
