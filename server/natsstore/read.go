package natsstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// Read implements server.Store with one batched direct get.
func (s *Store) Read(ctx context.Context, stream string, after uint64, limit int) ([]protocol.Event, server.StreamInfo, error) {
	info, err := s.Info(ctx, stream)
	if err != nil || limit <= 0 || after >= info.Last {
		return nil, info, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	start := max(after+1, info.First)
	limit = min(limit, int(info.Last-start+1))
	events := make([]protocol.Event, 0, limit)
	err = s.directGet(ctx, s.streamName(stream), start, limit, func(seq uint64, data []byte) error {
		ev, err := decode(data, stream, info.Epoch, seq)
		if err == nil {
			events = append(events, ev)
		}
		return err
	})
	if err != nil {
		return nil, info, err
	}
	if len(events) > 0 && events[0].Seq > start {
		// Retention dropped the first events between the Info and the
		// read (a batched get steps over what is gone): the log now
		// begins later, which the caller must see to reset.
		info.First = events[0].Seq
	}
	if s.opts.MaxAge > 0 {
		// JetStream ages events by when it stored them; an event that
		// carries an older time of its own is past retention already.
		cutoff := time.Now().Add(-s.opts.MaxAge)
		drop := 0
		for drop < len(events) && events[drop].Time.Before(cutoff) {
			drop++
		}
		if drop > 0 {
			info.First = events[drop-1].Seq + 1
			events = events[drop:]
		}
	}
	return events, info, nil
}

// directGet asks JetStream for up to batch messages from seq on and
// calls each with every one, in order.
func (s *Store) directGet(ctx context.Context, name string, seq uint64, batch int, each func(seq uint64, data []byte) error) error {
	inbox := s.nc.NewRespInbox()
	sub, err := s.nc.SubscribeSync(inbox)
	if err != nil {
		return unavailable(fmt.Errorf("read %s: %w", name, err))
	}
	defer func() { _ = sub.Unsubscribe() }()
	req, _ := json.Marshal(map[string]any{"seq": seq, "batch": batch})
	if err := s.nc.PublishRequest("$JS.API.DIRECT.GET."+name, inbox, req); err != nil {
		return unavailable(fmt.Errorf("read %s: %w", name, err))
	}
	for range batch + 1 {
		msg, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return unavailable(fmt.Errorf("read %s from seq %d: %w", name, seq, err))
		}
		switch status := msg.Header.Get("Status"); status {
		case "":
		case "204": // end of batch
			return nil
		case "404": // nothing from seq on: retention got there first
			return nil
		default:
			return unavailable(fmt.Errorf("read %s from seq %d: status %s %s", name, seq, status, msg.Header.Get("Description")))
		}
		var n uint64
		if _, err := fmt.Sscan(msg.Header.Get(jetstream.SequenceHeader), &n); err != nil {
			return fmt.Errorf("read %s: message without a sequence", name)
		}
		if err := each(n, msg.Data); err != nil {
			return err
		}
	}
	return nil
}

// decode reads a stored event and gives it its place.
func decode(data []byte, stream, epoch string, seq uint64) (protocol.Event, error) {
	var ev protocol.Event
	if err := json.Unmarshal(data, &ev); err != nil {
		return ev, fmt.Errorf("decode event %s:%d: %w", stream, seq, err)
	}
	ev.Stream, ev.Epoch, ev.Seq = stream, epoch, seq
	return ev, nil
}
