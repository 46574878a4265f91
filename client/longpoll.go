package client

import (
	"context"
	"fmt"
	"time"

	"github.com/pushd/push/internal/backoff"
	"github.com/pushd/push/protocol"
)

// runPoll polls until a poll fails or an answer ends the stream (Final):
// long polls (t TransportLongPoll, each waiting up to wait) back to back,
// or short polls (TransportPoll, wait 0) every PollInterval. Each answer's
// cursor is where the next one continues.
//
// The first poll of a connection is a short one even when long polling: a
// long poll answers only once there is an event, so on a quiet stream the
// subscription would not be reported connected until the wait ran out,
// though the server had accepted it.
func (s *Subscription) runPoll(ctx context.Context, sess *session, t Transport, wait time.Duration) error {
	for {
		start := time.Now()
		w := wait
		if !sess.opened {
			w = 0
		}
		var p protocol.Poll
		err := s.c.poll(ctx, s.stream, PollOptions{Since: s.pos.String(), Wait: w, User: s.opts.User}, &p)
		if err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
		next, err := protocol.ParseCursor(p.Cursor)
		if err != nil {
			return fmt.Errorf("%s: server sent %w", t, err)
		}
		if !sess.opened {
			sess.open(t)
		}
		for _, ev := range p.Events {
			if err := sess.deliver(ctx, ev, nil); err != nil {
				return err
			}
		}
		// Every event up to the answer's cursor has been handed over (a
		// one-task stream's cursor may be past its last event).
		s.setPos(next)
		if p.Final {
			return fmt.Errorf("%s: %w", t, errEnded)
		}
		var pause time.Duration
		switch {
		case len(p.Events) >= protocol.MaxPollEvents:
			// A full answer: more are waiting, ask again at once.
		case t == TransportPoll:
			pause = s.opts.PollInterval
		case len(p.Events) == 0 && time.Since(start) < w/2:
			// An empty answer long before the wait ran out: the server is
			// going away, or something on the way does not hold requests.
			// Do not spin.
			pause = s.opts.PollInterval
		}
		if pause > 0 && !backoff.Sleep(ctx, pause) {
			return ctx.Err()
		}
	}
}
