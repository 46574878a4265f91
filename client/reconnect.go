package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pushd/push/internal/backoff"
)

// run is the subscription's goroutine.
func (s *Subscription) run(ctx context.Context) {
	err := s.loop(ctx)
	if ctx.Err() != nil {
		err = s.parent.Err()
		if s.closed.Load() {
			err = nil
		}
	}
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
	if err != nil {
		s.c.log.Warn("subscription ended", "stream", s.stream.String(), "err", err)
	}
	s.emit(StateChange{State: StateClosed, Err: err})
	close(s.states)
	close(s.events)
	s.cancel()
	close(s.done)
}

// stableAfter is how long a connection must have lasted, if it delivered
// nothing, for the backoff to start over after it drops.
const stableAfter = 5 * time.Second

// loop connects and reconnects until ctx ends, the server ends the stream
// (nil), or an error is not Retryable.
func (s *Subscription) loop(ctx context.Context) error {
	if err := s.init(); err != nil {
		return err
	}
	b := backoff.New(s.opts.retryPolicy())
	renewed := false // the last connection was made with a renewed token
	for {
		sess := &session{s: s}
		sent, _ := s.c.auth.current(ctx)
		err := s.connect(ctx, sess)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if streamEnded(err) {
			s.c.log.Debug("subscription ended by the server: the stream is complete", "stream", s.stream.String())
			return nil
		}
		if err == nil {
			err = errors.New("connection ended")
		}
		// A token that expired, or was refused, is renewed from the
		// client's token source and the subscription resumes at once;
		// a renewed token refused before it served is not renewed again.
		if (sess.opened || !renewed) && s.c.renewAfter(ctx, err, sent) {
			renewed = true
			continue
		}
		renewed = false
		if !Retryable(err) {
			return fmt.Errorf("subscribe to %s: %w", s.stream, err)
		}
		if sess.delivered > 0 || (sess.opened && time.Since(sess.openedAt) >= stableAfter) {
			b.Reset()
		}
		delay := b.NextAfter(s.hint, RetryAfter(err))
		if s.opts.MaxRetries > 0 && b.Tries() > s.opts.MaxRetries {
			return fmt.Errorf("subscribe to %s: gave up after %d tries: %w", s.stream, s.opts.MaxRetries, err)
		}
		next := s.order()[0]
		s.c.log.Info("subscription reconnecting", "stream", s.stream.String(), "attempt", b.Tries(), "in", delay, "err", err)
		s.emit(StateChange{State: StateReconnecting, Transport: next, Attempt: b.Tries(), RetryIn: delay, Err: err})
		if !backoff.Sleep(ctx, delay) {
			return ctx.Err()
		}
	}
}
