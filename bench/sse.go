package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pushd/push/internal/sse"
	"github.com/pushd/push/protocol"
)

// sseReadBuffer is the size of each subscriber's SSE read buffer; longer
// lines are gathered in a buffer of the reader's own.
const sseReadBuffer = 4 << 10

// sseSession reads one Server-Sent Events stream until it ends. The
// subscriber's reader, and its buffers, serve every connection.
func (s *subscriber) sseSession(ctx context.Context, connected func()) error {
	// The Transport's ResponseHeaderTimeout bounds the wait for the answer.
	resp, err := s.r.getEvents(ctx, s.eventsURL(), "text/event-stream")
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return fmt.Errorf("connect: the answer is %q, not text/event-stream", ct)
	}
	connected()
	if s.sse == nil {
		s.sse = sse.NewReader(resp.Body, sseReadBuffer, 0)
	} else {
		s.sse.Reset(resp.Body)
	}
	defer s.sse.Reset(eof{})
	for {
		ev, err := s.sse.Next()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("read: %w", err)
		}
		// The event's JSON carries its cursor: the id field is not needed.
		if string(ev.Type) == "close" {
			if bytes.Contains(ev.Data, []byte(protocol.CloseSlowConsumer)) {
				s.slow++
			}
		} else {
			s.handle(ev.Data, time.Now().UnixNano())
		}
		s.pause(ctx)
	}
}

// eof is what an idle subscriber's reader points at between connections,
// so it keeps no finished response alive.
type eof struct{}

func (eof) Read([]byte) (int, error) { return 0, io.EOF }
