package bench

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/coder/websocket"

	"github.com/pushd/push/protocol"
)

// wsReadLimit is the largest WebSocket message a subscriber takes: a batch
// of many large events fits.
const wsReadLimit = 256 << 20

// wsSession reads one WebSocket connection until it ends. It reads with a
// context that never ends and closes the connection when ctx does, so a
// message costs no timer.
func (s *subscriber) wsSession(ctx context.Context, connected func()) error {
	opts := &websocket.DialOptions{HTTPClient: s.r.subClient}
	if p := s.r.o.WSSubprotocol; p != "" {
		opts.Subprotocols = []string{p}
	}
	dctx, cancel := context.WithTimeout(ctx, connectTimeout)
	c, resp, err := websocket.Dial(dctx, s.eventsURL(), opts)
	cancel()
	if err != nil {
		if resp != nil && resp.StatusCode != 101 && resp.Body != nil {
			return fmt.Errorf("connect: %w", answerError(resp))
		}
		return fmt.Errorf("connect: %w", err)
	}
	defer c.CloseNow()
	if p := s.r.o.WSSubprotocol; p != "" && c.Subprotocol() != p {
		return fmt.Errorf("connect: the server did not agree to the subprotocol %s", p)
	}
	batched := c.Subprotocol() == protocol.BatchSubprotocol
	c.SetReadLimit(wsReadLimit)
	stop := context.AfterFunc(ctx, func() { _ = c.CloseNow() })
	defer stop()
	connected()
	for {
		_, r, err := c.Reader(context.Background())
		if err != nil {
			if websocket.CloseStatus(err) == protocol.CloseCodeSlowConsumer {
				s.slow++
			}
			return fmt.Errorf("read: %w", err)
		}
		if s.buf, err = readAll(s.buf[:0], r); err != nil {
			return fmt.Errorf("read: %w", err)
		}
		now := time.Now().UnixNano()
		if batched {
			for msg := s.buf; len(msg) > 0; {
				line, rest, _ := bytes.Cut(msg, []byte{'\n'})
				if len(line) > 0 {
					s.handle(line, now)
				}
				msg = rest
			}
		} else {
			s.handle(s.buf, now)
		}
		s.buf = keepSmall(s.buf)
		s.pause(ctx)
	}
}
