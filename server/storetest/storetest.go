// Package storetest checks that a server.Store keeps the contract the hub
// relies on. Every store implementation runs it from its own tests.
package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// Options bound the store a Factory opens.
type Options struct {
	// MaxEvents is how many events a stream keeps (0: unbounded).
	MaxEvents int
	// MaxAge drops events older than this (0: no limit).
	MaxAge time.Duration
	// DedupeWindow is how long IDs are remembered (0: the store's
	// default).
	DedupeWindow time.Duration
}

// Factory opens a fresh, empty store bounded by o. The factory registers
// the store's cleanup with t.
type Factory func(t *testing.T, o Options) server.Store

// Run runs the conformance tests against stores made by open.
func Run(t *testing.T, open Factory) {
	ctx := context.Background()

	// Streams that hold nothing: reading one writes nothing a client
	// could tell, its first append keeps the epoch readers saw, and one
	// whose events all aged out starts anew in another epoch.
	t.Run("reading a stream nobody wrote is steady", func(t *testing.T) {
		s := open(t, Options{})
		before, err := s.Info(ctx, "room/quiet")
		if err != nil {
			t.Fatal(err)
		}
		if before.Epoch == "" || before.Last != 0 || before.First != 1 {
			t.Fatalf("Info of a stream nobody wrote = %+v, want an epoch, Last 0, First 1", before)
		}
		if _, in, err := s.Read(ctx, "room/quiet", 0, 10); err != nil || in != before {
			t.Fatalf("Read of a stream nobody wrote: info %+v, %v; Info said %+v", in, err, before)
		}
		if again, err := s.Info(ctx, "room/quiet"); err != nil || again != before {
			t.Fatalf("Info again: %+v, %v; it said %+v", again, err, before)
		}
		// The first append keeps the epoch readers were told, so their
		// cursors go on without a reset.
		if ev := stored(t, s, "room/quiet", msg("first"))[0]; ev.Seq != 1 || ev.Epoch != before.Epoch {
			t.Fatalf("the first event is %s:%d; readers were told epoch %s, so a cursor %s:0 goes on without a reset", ev.Epoch, ev.Seq, before.Epoch, before.Epoch)
		}
	})

	t.Run("streams nobody wrote have epochs of their own", func(t *testing.T) {
		s := open(t, Options{})
		a, _ := s.Info(ctx, "room/a")
		b, _ := s.Info(ctx, "room/b")
		if a.Epoch == "" || a.Epoch == b.Epoch {
			t.Fatalf("room/a and room/b have epochs %q and %q; each its own", a.Epoch, b.Epoch)
		}
	})

	t.Run("a stream whose events all aged out starts anew", func(t *testing.T) {
		const maxAge = 2 * time.Second
		s := open(t, Options{MaxAge: maxAge})
		first := stored(t, s, "room/a", msg("old"), msg("old"))
		var in server.StreamInfo
		testwait.Until(t, 20*time.Second, 20*time.Millisecond, func() error {
			var err error
			if in, err = s.Info(ctx, "room/a"); err != nil {
				return err
			}
			if in.Epoch == first[0].Epoch {
				return fmt.Errorf("%v after its events were stored, the stream is still of their epoch %s (%+v)", time.Since(first[0].Time), in.Epoch, in)
			}
			return nil
		})
		if in.Last != 0 || in.First != 1 {
			t.Fatalf("after its events aged out the stream's info is %+v; want nothing held", in)
		}
		again := stored(t, s, "room/a", msg("new"))[0]
		if again.Epoch == first[0].Epoch || again.Epoch != in.Epoch || again.Seq != 1 {
			t.Fatalf("the next event is %s:%d; want seq 1 in the epoch Info gave, %s, not the old %s", again.Epoch, again.Seq, in.Epoch, first[0].Epoch)
		}
		evs, in, err := s.Read(ctx, "room/a", 0, 10)
		if err != nil || len(evs) != 1 || evs[0].Text != "new" || in.First != 1 || in.Last != 1 {
			t.Fatalf("the stream holds %+v (info %+v, %v); want only the new event", evs, in, err)
		}
	})

	t.Run("reading past the end of a stream nobody wrote", func(t *testing.T) {
		s := open(t, Options{})
		evs, in, err := s.Read(ctx, "room/none", 5, 10)
		if err != nil || len(evs) != 0 || in.Last != 0 || in.First != 1 || in.Epoch == "" {
			t.Fatalf("Read after 5 of an unwritten stream: %v, %+v, %v", evs, in, err)
		}
	})

	t.Run("append assigns seqs in order", func(t *testing.T) {
		s := open(t, Options{})
		first := stored(t, s, "room/a", msg("1"), msg("2"))
		second := stored(t, s, "room/a", msg("3"))
		all := append(first, second...)
		in, _ := s.Info(ctx, "room/a")
		for i, ev := range all {
			if ev.Seq != uint64(i+1) || ev.Stream != "room/a" || ev.Epoch != in.Epoch || ev.Text != fmt.Sprint(i+1) {
				t.Fatalf("event %d = %+v, want seq %d in room/a, epoch %s", i, ev, i+1, in.Epoch)
			}
		}
		if in.First != 1 || in.Last != 3 {
			t.Fatalf("Info = %+v, want First 1 Last 3", in)
		}
		if other := stored(t, s, "room/b", msg("x")); other[0].Seq != 1 {
			t.Fatalf("another stream's first seq = %d, want 1", other[0].Seq)
		}
	})

	t.Run("read after cursor with limit", func(t *testing.T) {
		s := open(t, Options{})
		appendN(t, s, "tasks", 10)
		evs, in := Read(t, s, "tasks", 4, 3)
		if len(evs) != 3 || evs[0].Seq != 5 || evs[2].Seq != 7 || in.Last != 10 {
			t.Fatalf("Read(after 4, limit 3) = %d events from %v, info %+v", len(evs), Seqs(evs), in)
		}
		evs, _, _ = s.Read(ctx, "tasks", 10, 3)
		if len(evs) != 0 {
			t.Fatalf("Read after the last = %v, want none", Seqs(evs))
		}
	})

	t.Run("retention by count", func(t *testing.T) {
		s := open(t, Options{MaxEvents: 3})
		appendN(t, s, "room/a", 5)
		evs, in := Read(t, s, "room/a", 0, 10)
		if in.First != 3 || in.Last != 5 || len(evs) != 3 || evs[0].Seq != 3 {
			t.Fatalf("after 5 appends keeping 3: info %+v, events %v", in, Seqs(evs))
		}
	})

	t.Run("retention by age", func(t *testing.T) {
		s := open(t, Options{MaxAge: time.Hour})
		old := msg("old")
		old.Time = time.Now().Add(-2 * time.Hour)
		// In one append, so that the stream never holds only aged-out
		// events (such a stream is dropped: see "a stream whose events
		// all aged out starts anew").
		if _, err := s.Append(ctx, "room/a", []protocol.Event{old, old, msg("new")}); err != nil {
			t.Fatal(err)
		}
		evs, in := Read(t, s, "room/a", 0, 10)
		if in.First != 3 || len(evs) != 1 || evs[0].Text != "new" {
			t.Fatalf("after age retention: info %+v, events %v", in, Seqs(evs))
		}
	})

	t.Run("concurrent streams", func(t *testing.T) {
		s := open(t, Options{})
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := range 25 {
					if _, err := s.Append(ctx, fmt.Sprintf("room/%d", w), []protocol.Event{msg(fmt.Sprint(i))}); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		for w := range 4 {
			evs, _, err := s.Read(ctx, fmt.Sprintf("room/%d", w), 0, 100)
			if err != nil || len(evs) != 25 || evs[24].Seq != 25 {
				t.Fatalf("room/%d: %d events, err %v", w, len(evs), err)
			}
		}
	})

	runIDs(t, open)
}

// ReadUnwritten reads n streams nobody wrote, Info then Read each, as
// clients looking into rooms nobody uses do; a store's own tests then
// check that it holds none of them.
func ReadUnwritten(t testing.TB, s server.Store, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		room := fmt.Sprintf("room/r%d", i)
		if _, err := s.Info(ctx, room); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Read(ctx, room, 0, 10); err != nil {
			t.Fatal(err)
		}
	}
}

// stored appends events that carry no ID and returns them as stored,
// failing the test unless each was stored.
func stored(t *testing.T, s server.Store, stream string, events ...protocol.Event) []protocol.Event {
	t.Helper()
	out, err := s.Append(context.Background(), stream, events)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(events) {
		t.Fatalf("Append of %d events returned %d outcomes", len(events), len(out))
	}
	evs := make([]protocol.Event, len(out))
	for i, a := range out {
		if a.Repeat || a.Conflict {
			t.Fatalf("event %d without an ID came back as %+v", i, a)
		}
		evs[i] = a.Event
	}
	return evs
}

// msg is a chat message with text, sent now.
func msg(text string) protocol.Event {
	return protocol.Event{Type: protocol.TypeMessage, Time: time.Now().UTC(), User: "u", Text: text}
}

// appendN appends n messages to stream, one append each, with the texts
// "1" to "n".
func appendN(t *testing.T, s server.Store, stream string, n int) {
	t.Helper()
	for i := range n {
		if _, err := s.Append(context.Background(), stream, []protocol.Event{msg(fmt.Sprint(i + 1))}); err != nil {
			t.Fatal(err)
		}
	}
}

// Read reads stream after a seq, at most limit events, failing the test
// on an error.
func Read(t testing.TB, s server.Store, stream string, after uint64, limit int) ([]protocol.Event, server.StreamInfo) {
	t.Helper()
	evs, in, err := s.Read(context.Background(), stream, after, limit)
	if err != nil {
		t.Fatal(err)
	}
	return evs, in
}

// Seqs returns the seqs of evs, for failure messages and comparisons.
func Seqs(evs []protocol.Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, ev := range evs {
		out[i] = ev.Seq
	}
	return out
}
