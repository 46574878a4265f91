package natsstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// Append implements server.Store: it publishes the events in order and
// returns once JetStream has acknowledged every one. Events other servers
// append at the same time may fall between them. On an error it returns
// the events stored before it, which are in the stream.
func (s *Store) Append(ctx context.Context, stream string, events []protocol.Event) ([]server.Appended, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	out, err := s.append(ctx, stream, events)
	if len(out) == 0 && errors.Is(err, errStreamGone) {
		// Deleted since this server last used it (its events aged out,
		// and another server swept it): nothing was stored. Make it
		// anew and append there.
		out, err = s.append(ctx, stream, events)
	}
	return out, err
}

// errStreamGone: no JetStream stream took a publish: the stream is gone.
var errStreamGone = errors.New("the stream is gone")

// append is Append, once.
func (s *Store) append(ctx context.Context, stream string, events []protocol.Event) ([]server.Appended, error) {
	js, err := s.cached(ctx, stream)
	if err != nil {
		return nil, err
	}
	subject := s.subject(stream)
	acks := make([]jetstream.PubAckFuture, len(events))
	for i := range events {
		events[i].Stream, events[i].Epoch, events[i].Seq = stream, js.epoch, 0
		data, err := json.Marshal(&events[i])
		if err == nil {
			msg := &nats.Msg{Subject: subject, Data: data}
			opts := []jetstream.PublishOpt{jetstream.WithExpectStream(js.name)}
			if id := events[i].ID; id != "" {
				// JetStream keeps the stream's de-duplication window.
				opts = append(opts, jetstream.WithMsgID(id))
			}
			acks[i], err = s.js.PublishMsgAsync(msg, opts...)
			if err != nil {
				err = unavailable(fmt.Errorf("publish to %s: %w", js.name, err))
			}
		}
		if err != nil {
			// The ones already sent may be stored: wait for them.
			stored, aerr := s.await(ctx, js, stream, events, acks[:i])
			return stored, cmp.Or(aerr, err)
		}
	}
	return s.await(ctx, js, stream, events, acks)
}

// await collects the acknowledgements of events, in order, up to the first
// that fails. A duplicate's acknowledgement names the seq of the event
// first stored with its ID, which is read back to answer with it.
func (s *Store) await(ctx context.Context, js *jsStream, stream string, events []protocol.Event, acks []jetstream.PubAckFuture) ([]server.Appended, error) {
	out := make([]server.Appended, 0, len(acks))
	for i, f := range acks {
		select {
		case ack := <-f.Ok():
			events[i].Seq = ack.Sequence
			if !ack.Duplicate {
				out = append(out, server.Appended{Event: events[i]})
				continue
			}
			a, err := s.repeatOf(ctx, js, events[i])
			if err != nil {
				return out, err
			}
			out = append(out, a)
		case err := <-f.Err():
			if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
				s.forget(stream) // deleted behind our back: look it up again next time
				err = fmt.Errorf("%w: %w", errStreamGone, err)
			}
			return out, unavailable(fmt.Errorf("publish to %s: %w", js.name, err))
		case <-ctx.Done():
			return out, unavailable(fmt.Errorf("publish to %s: no acknowledgement within %s", js.name, s.opts.Timeout))
		}
	}
	return out, nil
}

// repeatOf answers ev, whose ID JetStream found in its window, with the
// event first stored under that ID (at ev.Seq), read back; when retention
// dropped it meanwhile, with ev at that seq, as the same content is all
// that can be told.
func (s *Store) repeatOf(ctx context.Context, js *jsStream, ev protocol.Event) (server.Appended, error) {
	var first *protocol.Event
	err := s.directGet(ctx, js.name, ev.Seq, 1, func(seq uint64, data []byte) error {
		if seq != ev.Seq {
			return nil // the first is gone; this is a later one
		}
		got, err := decode(data, ev.Stream, ev.Epoch, seq)
		first = &got
		return err
	})
	if err != nil {
		return server.Appended{}, err
	}
	if first == nil {
		return server.Appended{Event: ev, Repeat: true}, nil
	}
	return server.RepeatOf(ev, server.NewIDRecord(first)), nil
}
