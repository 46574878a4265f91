package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/server"
)

// runEmpty checks streams that hold nothing: reading one writes nothing
// a client could tell, its first append keeps the epoch readers saw, and
// one whose events all aged out starts anew in another epoch.
func runEmpty(t *testing.T, open Factory) {
	ctx := context.Background()

	t.Run("reading a stream nobody wrote is steady", func(t *testing.T) {
		s := open(t, Options{})
		before, err := s.Info(ctx, "room/quiet")
		if err != nil {
			t.Fatal(err)
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
}
