package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/pushd/push/protocol"
)

// sseState is a subscriber's SSE reader, kept across connections.
type sseState struct {
	br    *bufio.Reader
	long  []byte // a line longer than br's buffer
	event []byte // the current frame's event name
	data  []byte // the current frame's data
}

// sseReadBuffer is the size of each subscriber's SSE read buffer; longer
// lines are gathered in sseState.long.
const sseReadBuffer = 4 << 10

// sseSession reads one Server-Sent Events stream until it ends.
func (s *subscriber) sseSession(ctx context.Context, connected func()) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.r.eventsURL(s.cursor()), nil)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	req.Header.Set("Accept", "text/event-stream")
	// The Transport's ResponseHeaderTimeout bounds the wait for the answer.
	resp, err := s.r.subClient.Do(req)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("connect: %w", answerError(resp))
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return fmt.Errorf("connect: the answer is %q, not text/event-stream", ct)
	}
	connected()
	st := &s.sse
	if st.br == nil {
		st.br = bufio.NewReaderSize(resp.Body, sseReadBuffer)
	} else {
		st.br.Reset(resp.Body)
	}
	defer st.br.Reset(eof{})
	st.event, st.data = st.event[:0], st.data[:0]
	hasData := false
	for {
		line, err := st.readLine()
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if len(line) == 0 { // end of a frame
			if hasData {
				if string(st.event) == "close" {
					if bytes.Contains(st.data, []byte(protocol.CloseSlowConsumer)) {
						s.slow++
					}
				} else {
					s.handle(st.data, time.Now().UnixNano())
				}
			}
			st.event, st.data, hasData = st.event[:0], keepSmall(st.data), false
			s.pause(ctx)
			continue
		}
		field, value, _ := bytes.Cut(line, []byte{':'})
		value = bytes.TrimPrefix(value, []byte{' '})
		switch string(field) {
		case "data":
			if hasData {
				st.data = append(st.data, '\n')
			}
			st.data, hasData = append(st.data, value...), true
		case "event":
			st.event = append(st.event[:0], value...)
		}
		// id, retry and comments (an empty field) need nothing: the event's
		// JSON carries its cursor.
	}
}

// readLine returns the next line without its line ending, valid until the
// next call.
func (st *sseState) readLine() ([]byte, error) {
	line, err := st.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		st.long = append(st.long[:0], line...)
		for err == bufio.ErrBufferFull {
			line, err = st.br.ReadSlice('\n')
			st.long = append(st.long, line...)
		}
		line = st.long
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = bytes.TrimSuffix(line[:len(line)-1], []byte{'\r'})
	return line, nil
}

// eof is what an idle subscriber's reader points at between connections,
// so it keeps no finished response alive.
type eof struct{}

func (eof) Read([]byte) (int, error) { return 0, io.EOF }
