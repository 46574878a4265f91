package natsstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushd/push/protocol"
)

// followBatch is the most events one deliver call gets.
const followBatch = 256

// followInactive is how long NATS keeps a follow consumer no one pulls from.
const followInactive = 5 * time.Second

// Follow implements server.Follower with an ordered consumer, which
// JetStream recreates by itself after a lost connection, from where it
// left off. A stream deleted and made again (by an operator, or a NATS
// that lost its data) is a new history: Follow returns for the hub to
// start on it afresh if it finds one when it starts, or when the consumer
// reports trouble and a check finds one, or cannot be made.
func (s *Store) Follow(ctx context.Context, stream string, after protocol.Cursor, deliver func([]protocol.Event)) error {
	lctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	js, st, err := s.lookup(lctx, stream, false)
	cancel()
	if errors.Is(err, errNoStream) {
		// Nothing to follow until its first append makes it: wait for
		// that, then start again (in the epoch readers were told, unless
		// the empty epoch changed meanwhile).
		if err := s.awaitStream(ctx, stream); err != nil {
			return err
		}
		lctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
		js, st, err = s.lookup(lctx, stream, false)
		cancel()
	}
	if err != nil {
		return err
	}
	if js.epoch != after.Epoch {
		return fmt.Errorf("follow %s: the stream was made anew (epoch %s, not %s)", js.name, js.epoch, after.Epoch)
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   after.Seq + 1,
		// NATS drops a consumer nobody has pulled from for this long, so
		// one this node could not delete (a timeout on the way out, or the
		// one an ordered consumer replaces after a reset) goes soon, not
		// after the library's five minutes. A consumer being consumed
		// always has a pull waiting and stays.
		InactiveThreshold: followInactive,
	})
	if err != nil {
		return unavailable(fmt.Errorf("follow %s: %w", js.name, err))
	}
	var pending []protocol.Event
	trouble := make(chan struct{}, 1)
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		meta, err := msg.Metadata()
		if err != nil {
			s.log.Error("follow: message without metadata", "stream", stream, "err", err)
			return
		}
		if ev, err := decode(msg.Data(), stream, js.epoch, meta.Sequence.Stream); err != nil {
			// Subscribers that read it from the store get the same error.
			s.log.Error("follow: skip undecodable event", "stream", stream, "seq", meta.Sequence.Stream, "err", err)
		} else {
			pending = append(pending, ev)
		}
		if len(pending) > 0 && (meta.NumPending == 0 || len(pending) >= followBatch) {
			deliver(pending)
			pending = pending[:0]
		}
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		s.log.Debug("follow", "stream", stream, "err", err)
		select {
		case trouble <- struct{}{}:
		default:
		}
	}))
	if err != nil {
		return unavailable(fmt.Errorf("follow %s: %w", js.name, err))
	}
	defer func() {
		cc.Stop()
		<-cc.Closed()
		// NATS keeps a stopped consumer until it has been inactive for a
		// while (minutes); let it go now, or the server holds one per
		// stream this node ever followed. Briefly, and only when NATS is
		// there: a shutdown must not wait on it.
		if info := cons.CachedInfo(); info != nil && s.nc.IsConnected() {
			dctx, cancel := context.WithTimeout(context.Background(), min(s.opts.Timeout, time.Second))
			if err := st.DeleteConsumer(dctx, info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				s.log.Debug("follow: delete consumer", "stream", stream, "err", err)
			}
			cancel()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-cc.Closed():
			return unavailable(fmt.Errorf("follow %s: consumer stopped", js.name))
		case <-trouble:
			lctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
			now, _, err := s.lookup(lctx, stream, false)
			cancel()
			switch {
			case errors.Is(err, errNoStream):
				return fmt.Errorf("follow %s: the stream is gone (its events aged out)", js.name)
			case err != nil:
				// Whether the stream is still this one is not known, and
				// the consumer may go on in another: start afresh.
				return fmt.Errorf("follow %s: check the stream after trouble: %w", js.name, err)
			case now.epoch != js.epoch:
				return fmt.Errorf("follow %s: the stream was made anew (epoch %s, was %s)", js.name, now.epoch, js.epoch)
			}
		}
	}
}
