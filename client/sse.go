package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"
)

// runSSE reads one Server-Sent Events stream.
func (s *Subscription) runSSE(ctx context.Context, sess *session) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wd := newWatchdog(s.opts.ConnectTimeout, cancel)
	defer wd.stop()

	req, err := s.c.newRequest(ctx, http.MethodGet, s.path, s.query(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	if s.hasPos {
		// What a reconnecting EventSource sends; the server prefers it
		// to ?since=, which says the same here.
		req.Header.Set("Last-Event-ID", s.pos.String())
	}
	resp, err := s.c.hc.Do(req)
	if err != nil {
		if werr := wd.err("sse request"); werr != nil {
			// Something held the request without answering.
			return &refusedError{transport: TransportSSE, err: werr, transient: true}
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &refusedError{transport: TransportSSE, err: decodeError(resp)}
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return &refusedError{transport: TransportSSE, err: &notPushdError{status: resp.StatusCode,
			msg: fmt.Sprintf("answer is %q, not text/event-stream", resp.Header.Get("Content-Type"))}}
	}
	sess.open(TransportSSE)
	wd.set(s.opts.IdleTimeout)
	r := newSSEReader(&activityReader{r: resp.Body, kick: wd.kick})
	for {
		f, err := r.next()
		if r.retry > 0 {
			s.hint = r.retry
		}
		if err != nil {
			if werr := wd.err("sse"); werr != nil {
				return werr
			}
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("sse: the server ended the stream: %w", io.EOF)
			}
			return fmt.Errorf("sse: %w", err)
		}
		if f.event == "close" {
			ce := &CloseError{}
			var body struct{ Reason, Message string }
			if json.Unmarshal([]byte(f.data), &body) == nil {
				ce.Reason, ce.Message = body.Reason, body.Message
			}
			return ce
		}
		if err := sess.deliverJSON(ctx, []byte(f.data), wd); err != nil {
			return err
		}
	}
}

// activityReader calls kick whenever bytes arrive: heartbeat comments
// count as signs of life too.
type activityReader struct {
	r    io.Reader
	kick func()
}

func (a *activityReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		a.kick()
	}
	return n, err
}

// sseFrame is one dispatched Server-Sent Event.
type sseFrame struct {
	event string // "message" when the frame named none
	data  string // the data lines joined by "\n"
	id    string // the last event ID at dispatch
}

// maxSSELine bounds one line of an event stream.
const maxSSELine = 16 << 20

// sseReader parses an event stream as the HTML standard says: lines end
// in CRLF, LF or CR; a line starting with ':' is a comment; "field: value"
// loses one space after the colon; data lines are joined with "\n"; a blank
// line dispatches the frame, unless it has no data; id persists from frame
// to frame; retry sets the reconnection time. Unknown fields are ignored.
type sseReader struct {
	sc     *bufio.Scanner
	first  bool
	lastID string
	// retry is the reconnection time the server asked for, 0 if none.
	retry time.Duration
}

func newSSEReader(r io.Reader) *sseReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4<<10), maxSSELine)
	sc.Split(scanSSELines)
	return &sseReader{sc: sc, first: true}
}

// next returns the next frame; io.EOF when the stream ended (a frame cut
// off by the end is discarded, as the standard says).
func (r *sseReader) next() (sseFrame, error) {
	var event string
	var data []byte
	hasData := false
	for r.sc.Scan() {
		line := r.sc.Bytes()
		if r.first {
			line = bytes.TrimPrefix(line, []byte("\xEF\xBB\xBF"))
			r.first = false
		}
		if len(line) == 0 {
			if !hasData {
				event = ""
				continue
			}
			if event == "" {
				event = "message"
			}
			return sseFrame{event: event, data: string(data[:len(data)-1]), id: r.lastID}, nil
		}
		if line[0] == ':' {
			continue
		}
		field, value, found := bytes.Cut(line, []byte{':'})
		if found {
			value = bytes.TrimPrefix(value, []byte{' '})
		}
		switch string(field) {
		case "event":
			event = string(value)
		case "data":
			data = append(append(data, value...), '\n')
			hasData = true
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				r.lastID = string(value)
			}
		case "retry":
			if ms, err := strconv.ParseUint(string(value), 10, 32); err == nil && len(value) > 0 && value[0] != '+' {
				r.retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
	if err := r.sc.Err(); err != nil {
		return sseFrame{}, err
	}
	return sseFrame{}, io.EOF
}

// scanSSELines is a bufio.SplitFunc for lines ending in CRLF, LF or CR.
// A CR at the end of what has arrived waits for the next byte, to tell CR
// from CRLF.
func scanSSELines(data []byte, atEOF bool) (int, []byte, error) {
	if atEOF && len(data) == 0 {
		return 0, nil, nil
	}
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		if data[i] == '\n' {
			return i + 1, data[:i], nil
		}
		switch {
		case i+1 < len(data) && data[i+1] == '\n':
			return i + 2, data[:i], nil
		case i+1 < len(data) || atEOF:
			return i + 1, data[:i], nil
		}
		return 0, nil, nil
	}
	if atEOF {
		return len(data), data, nil
	}
	return 0, nil, nil
}
