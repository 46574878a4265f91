package bench

import (
	"encoding/json"
	"testing"

	"github.com/pushd/push/protocol"
)

// handle counts each message once, notices duplicates and messages that
// come after a later one of the same publisher, follows the cursor, and
// ignores events that are not the run's messages.
func TestSubscriberTally(t *testing.T) {
	o := DefaultOptions()
	o.Subscribers, o.Messages, o.Publishers = 1, 6, 2
	r := &runner{o: o, runID: "run", allDone: make(chan struct{}), since: protocol.Cursor{Epoch: "e", Seq: 10}}
	s := newSubscriber(r, 0)
	seq := uint64(10)
	send := func(typ protocol.Type, user, text string) {
		t.Helper()
		seq++
		b, err := json.Marshal(protocol.Event{Seq: seq, Epoch: "e", Stream: "room/x", Type: typ, User: user, Text: text})
		if err != nil {
			t.Fatal(err)
		}
		s.handle(b, 1000)
	}
	msg := func(pub, n int) string { return string(appendPayload(nil, "run", pub, n, 900, 64)) }
	send(protocol.TypeLogin, "alice", "")
	send(protocol.TypeMessage, "bench", msg(0, 1))
	send(protocol.TypeMessage, "bench", msg(0, 0)) // publisher 0 went back: out of order
	send(protocol.TypeMessage, "bench", msg(1, 0))
	send(protocol.TypeMessage, "bench", msg(1, 0)) // again: duplicate
	send(protocol.TypeMessage, "bench", "other:0:0:0:")
	send(protocol.TypeMessage, "bench", msg(5, 0)) // no such publisher
	send(protocol.TypeMessage, "bench", msg(1, 1))
	send(protocol.TypeMessage, "bench", msg(0, 2))
	if got := s.unique.Load(); got != 5 {
		t.Errorf("unique %d, want 5", got)
	}
	if s.dups != 1 || s.outOfOrder != 1 || s.malformed != 1 {
		t.Errorf("dups %d, out of order %d, malformed %d; want 1, 1, 1", s.dups, s.outOfOrder, s.malformed)
	}
	if s.cursor() != "e:19" {
		t.Errorf("cursor %s, want e:19", s.cursor())
	}
	select {
	case <-r.allDone:
		t.Error("done with 5 of 6 messages")
	default:
	}
	send(protocol.TypeMessage, "bench", msg(1, 2))
	select {
	case <-r.allDone:
	default:
		t.Error("not done with every message")
	}
	s.flushLatency()
	if h := r.latency.sum(); h.total != 6 || h.max != 100 {
		t.Errorf("latency: %d samples, max %d; want 6 and 100", h.total, h.max)
	}
}
