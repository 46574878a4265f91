package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/pushd/push/protocol"
)

// Long polls ask to wait this long (the server caps it at its own limit,
// 25 s by default) and give up on an answer pollSlack later.
const (
	pollWait    = 20 * time.Second
	pollSlack   = 10 * time.Second
	maxPollBody = 256 << 20
)

// pollState is a subscriber's poll answer, decoded into the same memory
// each time.
type pollState struct {
	answer struct {
		Events []json.RawMessage `json:"events"`
		Cursor string            `json:"cursor"`
	}
}

// pollSession polls until a poll fails. The first poll is short (wait=0),
// so the subscription is known to work before anything is published; the
// rest are long polls, each continuing from the cursor of the last answer.
func (s *subscriber) pollSession(ctx context.Context, connected func()) error {
	wait := time.Duration(0)
	for {
		if err := s.poll(ctx, wait); err != nil {
			return err
		}
		connected()
		wait = pollWait
		s.pause(ctx)
	}
}

func (s *subscriber) poll(ctx context.Context, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait+pollSlack)
	defer cancel()
	url := s.eventsURL() + "&wait=" + wait.String()
	resp, err := s.r.getEvents(ctx, url, "")
	if err != nil {
		return fmt.Errorf("poll: %w", err)
	}
	defer resp.Body.Close()
	s.buf, err = readAll(s.buf[:0], io.LimitReader(resp.Body, maxPollBody))
	if err != nil {
		return fmt.Errorf("poll: read: %w", err)
	}
	now := time.Now().UnixNano()
	a := &s.polls.answer
	a.Events, a.Cursor = a.Events[:0], ""
	if err := json.Unmarshal(s.buf, a); err != nil {
		return fmt.Errorf("poll: %w", err)
	}
	for _, ev := range a.Events {
		s.handle(ev, now)
	}
	c, err := protocol.ParseCursor(a.Cursor)
	if err != nil {
		return fmt.Errorf("poll: answer: %w", err)
	}
	s.epoch, s.seq = c.Epoch, c.Seq
	if cap(s.buf) > 256<<10 {
		a.Events = nil // the events held much of a big answer
	}
	s.buf = keepSmall(s.buf)
	return nil
}
