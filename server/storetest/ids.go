package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// runIDs checks the de-duplication of events with an ID.
func runIDs(t *testing.T, open Factory) {
	ctx := context.Background()

	t.Run("an id is stored once", func(t *testing.T) {
		s := open(t, Options{})
		first := appendOne(t, s, "room/a", withID(msg("hello"), "m-1"))
		if first.Repeat || first.Conflict || first.Event.Seq != 1 || first.Event.ID != "m-1" {
			t.Fatalf("first append of m-1: %+v", first)
		}
		appendOne(t, s, "room/a", msg("between"))
		again := appendOne(t, s, "room/a", withID(msg("hello"), "m-1"))
		if !again.Repeat || again.Conflict {
			t.Fatalf("repeat of m-1: %+v, want a repeat", again)
		}
		sameEvent(t, again.Event, first.Event)
		evs, in, err := s.Read(ctx, "room/a", 0, 10)
		if err != nil || len(evs) != 2 || in.Last != 2 || evs[0].ID != "m-1" || evs[1].ID != "" {
			t.Fatalf("after a repeat the stream holds %+v (info %+v, err %v); want m-1 and one message without id", evs, in, err)
		}
	})

	t.Run("a repeat in the same append", func(t *testing.T) {
		s := open(t, Options{})
		out, err := s.Append(ctx, "room/a", []protocol.Event{withID(msg("x"), "k"), msg("y"), withID(msg("x"), "k")})
		if err != nil || len(out) != 3 {
			t.Fatalf("Append: %v, %d outcomes", err, len(out))
		}
		if out[0].Repeat || out[1].Repeat || !out[2].Repeat || out[2].Conflict {
			t.Fatalf("outcomes %+v; want the third a repeat of the first", out)
		}
		sameEvent(t, out[2].Event, out[0].Event)
		if in, _ := s.Info(ctx, "room/a"); in.Last != 2 {
			t.Fatalf("Last = %d after storing two of three", in.Last)
		}
	})

	t.Run("an id with other content is a conflict", func(t *testing.T) {
		s := open(t, Options{})
		first := appendOne(t, s, "room/a", withID(msg("hello"), "m-1"))
		other := withID(msg("goodbye"), "m-1")
		c := appendOne(t, s, "room/a", other)
		if !c.Repeat || !c.Conflict || c.Event.Seq != first.Event.Seq || c.Event.Epoch != first.Event.Epoch {
			t.Fatalf("other text under m-1: %+v; want a conflict at seq %d", c, first.Event.Seq)
		}
		other = withID(msg("hello"), "m-1")
		other.User = "someone-else"
		if c := appendOne(t, s, "room/a", other); !c.Conflict {
			t.Fatalf("another user under m-1: %+v; want a conflict", c)
		}
		if in, _ := s.Info(ctx, "room/a"); in.Last != 1 {
			t.Fatalf("Last = %d; conflicts store nothing", in.Last)
		}
	})

	t.Run("ids are per stream", func(t *testing.T) {
		s := open(t, Options{})
		appendOne(t, s, "room/a", withID(msg("hello"), "m-1"))
		if b := appendOne(t, s, "room/b", withID(msg("hello"), "m-1")); b.Repeat || b.Event.Seq != 1 {
			t.Fatalf("m-1 in another stream: %+v; want stored", b)
		}
	})

	t.Run("a repeat after retention dropped the first", func(t *testing.T) {
		s := open(t, Options{MaxEvents: 1})
		first := appendOne(t, s, "room/a", withID(msg("hello"), "m-1"))
		appendOne(t, s, "room/a", msg("pushes m-1 out"))
		again := appendOne(t, s, "room/a", withID(msg("hello"), "m-1"))
		if !again.Repeat || again.Conflict || again.Event.Seq != first.Event.Seq || again.Event.Epoch != first.Event.Epoch ||
			again.Event.Text != "hello" || again.Event.ID != "m-1" {
			t.Fatalf("repeat of m-1 once it left the history: %+v; want a repeat at seq %d", again, first.Event.Seq)
		}
		if in, _ := s.Info(ctx, "room/a"); in.Last != 2 {
			t.Fatalf("Last = %d; the repeat stored something", in.Last)
		}
	})

	t.Run("the window ends", func(t *testing.T) {
		const window = 300 * time.Millisecond
		s := open(t, Options{DedupeWindow: window})
		first := appendOne(t, s, "room/a", withID(msg("hello"), "m-1"))
		var later server.Appended
		testwait.Until(t, 20*time.Second, 50*time.Millisecond, func() error {
			later = appendOne(t, s, "room/a", withID(msg("hello"), "m-1"))
			if later.Repeat {
				return errors.New("m-1 is still remembered")
			}
			return nil
		})
		if later.Event.Seq <= first.Event.Seq || time.Since(first.Event.Time) < window {
			t.Fatalf("m-1 stored again at seq %d, %v after the first (seq %d); want a new seq after the window", later.Event.Seq, time.Since(first.Event.Time), first.Event.Seq)
		}
	})
}

// withID gives ev an ID.
func withID(ev protocol.Event, id string) protocol.Event {
	ev.ID = id
	return ev
}

// appendOne appends one event and returns its outcome.
func appendOne(t *testing.T, s server.Store, stream string, ev protocol.Event) server.Appended {
	t.Helper()
	out, err := s.Append(context.Background(), stream, []protocol.Event{ev})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 {
		t.Fatalf("Append of one event returned %d outcomes", len(out))
	}
	return out[0]
}

// sameEvent fails unless got is want: same place, time and content.
func sameEvent(t *testing.T, got, want protocol.Event) {
	t.Helper()
	if got.Seq != want.Seq || got.Epoch != want.Epoch || got.Stream != want.Stream || !got.Time.Equal(want.Time) ||
		got.Type != want.Type || got.User != want.User || got.Text != want.Text || got.ID != want.ID {
		t.Fatalf("got %+v; want the first event %+v", got, want)
	}
}
