package server_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"
	"weak"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
	"github.com/pushd/push/server/storetest"
)

func TestMemoryStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, o storetest.Options) server.Store {
		s := server.NewMemoryStore(server.MemoryOptions{MaxEvents: o.MaxEvents, MaxAge: o.MaxAge, DedupeWindow: o.DedupeWindow})
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func memMsg(text string, at time.Time) protocol.Event {
	return protocol.Event{Type: protocol.TypeMessage, Time: at, User: "u", Text: text}
}

func memAppend(t *testing.T, s *server.MemoryStore, stream string, evs ...protocol.Event) []protocol.Event {
	t.Helper()
	out, err := s.Append(context.Background(), stream, evs)
	if err != nil {
		t.Fatal(err)
	}
	stored := make([]protocol.Event, len(out))
	for i, a := range out {
		stored[i] = a.Event
	}
	return stored
}

func TestMemoryStoreAppendReadInfo(t *testing.T) {
	ctx := context.Background()
	s := server.NewMemoryStore(server.MemoryOptions{})
	defer s.Close()
	info, err := s.Info(ctx, "room/a")
	if err != nil || info.Last != 0 || info.First != 1 || info.Epoch == "" {
		t.Fatalf("Info of a new stream: %+v, %v; want an epoch, First 1, Last 0", info, err)
	}
	now := time.Now().UTC()
	out := memAppend(t, s, "room/a", memMsg("1", now), memMsg("2", now))
	out = append(out, memAppend(t, s, "room/a", memMsg("3", now))...)
	for i, ev := range out {
		if ev.Seq != uint64(i+1) || ev.Epoch != info.Epoch || ev.Stream != "room/a" || ev.Text != strconv.Itoa(i+1) || !ev.Time.Equal(now) {
			t.Fatalf("appended event %d = %+v", i, ev)
		}
	}
	if info, _ = s.Info(ctx, "room/a"); info.First != 1 || info.Last != 3 {
		t.Fatalf("Info after 3 appends: %+v", info)
	}
	for _, tc := range []struct {
		after uint64
		limit int
		want  []uint64
	}{
		{0, 10, []uint64{1, 2, 3}},
		{0, 2, []uint64{1, 2}},
		{1, 10, []uint64{2, 3}},
		{2, 1, []uint64{3}},
		{3, 10, []uint64{}},
		{99, 10, []uint64{}},
		{0, 0, []uint64{}},
	} {
		evs, got := storetest.Read(t, s, "room/a", tc.after, tc.limit)
		if seqs := storetest.Seqs(evs); len(seqs) != len(tc.want) || (len(seqs) > 0 && (seqs[0] != tc.want[0] || seqs[len(seqs)-1] != tc.want[len(tc.want)-1])) {
			t.Errorf("Read(after %d, limit %d) = %v; want %v", tc.after, tc.limit, seqs, tc.want)
		}
		if got != info {
			t.Errorf("Read's info %+v; want %+v", got, info)
		}
	}
	// Streams are independent, each with its own epoch and seqs.
	b := memAppend(t, s, "room/b", memMsg("b1", now))
	if b[0].Seq != 1 || b[0].Stream != "room/b" {
		t.Fatalf("first event of another stream: %+v", b[0])
	}
	if bi, _ := s.Info(ctx, "room/b"); bi.Epoch == info.Epoch {
		t.Fatalf("two streams share the epoch %s", bi.Epoch)
	}
	// What Read returns is the caller's: changing it changes nothing stored.
	evs, _ := storetest.Read(t, s, "room/a", 0, 10)
	evs[0].Text = "changed"
	if again, _ := storetest.Read(t, s, "room/a", 0, 1); again[0].Text != "1" {
		t.Fatalf("a change to Read's result reached the store: %q", again[0].Text)
	}
}

func TestMemoryStoreRetentionByCount(t *testing.T) {
	s := server.NewMemoryStore(server.MemoryOptions{MaxEvents: 5})
	defer s.Close()
	now := time.Now().UTC()
	for i := range 12 {
		memAppend(t, s, "room/a", memMsg(strconv.Itoa(i+1), now))
	}
	evs, info := storetest.Read(t, s, "room/a", 0, 100)
	if info.First != 8 || info.Last != 12 {
		t.Fatalf("info after 12 appends keeping 5: %+v; want First 8, Last 12", info)
	}
	if seqs := storetest.Seqs(evs); len(seqs) != 5 || seqs[0] != 8 || seqs[4] != 12 || evs[0].Text != "8" {
		t.Fatalf("Read from 0 = %v; want 8..12", seqs)
	}
	// Reading from inside the dropped part starts at the first kept event.
	if evs, _ := storetest.Read(t, s, "room/a", 3, 2); len(evs) != 2 || evs[0].Seq != 8 {
		t.Fatalf("Read(after 3, limit 2) = %v; want 8, 9", storetest.Seqs(evs))
	}
	// One large append keeps only its newest events.
	var batch []protocol.Event
	for i := range 9 {
		batch = append(batch, memMsg("big"+strconv.Itoa(i), now))
	}
	out := memAppend(t, s, "room/a", batch...)
	if out[0].Seq != 13 || out[8].Seq != 21 {
		t.Fatalf("seqs of a batch: %v", storetest.Seqs(out))
	}
	if _, info := storetest.Read(t, s, "room/a", 0, 100); info.First != 17 || info.Last != 21 {
		t.Fatalf("info after a large batch: %+v; want 17..21", info)
	}
	// Many more appends keep the bound.
	for i := range 1000 {
		memAppend(t, s, "room/a", memMsg(strconv.Itoa(i), now))
	}
	if evs, info := storetest.Read(t, s, "room/a", 0, 100); len(evs) != 5 || info.Last != 1021 || info.First != 1017 {
		t.Fatalf("after 1,000 more: %d events, %+v", len(evs), info)
	}
}

func TestMemoryStoreRetentionByAge(t *testing.T) {
	s := server.NewMemoryStore(server.MemoryOptions{MaxAge: time.Hour})
	defer s.Close()
	now := time.Now().UTC()
	memAppend(t, s, "room/a", memMsg("old1", now.Add(-3*time.Hour)), memMsg("old2", now.Add(-2*time.Hour)))
	memAppend(t, s, "room/a", memMsg("new1", now.Add(-time.Minute)), memMsg("new2", now))
	evs, info := storetest.Read(t, s, "room/a", 0, 10)
	if info.First != 3 || info.Last != 4 || len(evs) != 2 || evs[0].Text != "new1" {
		t.Fatalf("after old and new events: %v %+v; want 3..4 only", storetest.Seqs(evs), info)
	}
	// An age limit and a count limit together: the stricter wins.
	both := server.NewMemoryStore(server.MemoryOptions{MaxEvents: 1, MaxAge: time.Hour})
	defer both.Close()
	memAppend(t, both, "room/a", memMsg("old", now.Add(-2*time.Hour)), memMsg("a", now), memMsg("b", now))
	if evs, info := storetest.Read(t, both, "room/a", 0, 10); len(evs) != 1 || evs[0].Text != "b" || info.First != 3 {
		t.Fatalf("count and age: %v %+v; want only b at 3", storetest.Seqs(evs), info)
	}
}

// A stream that is only appended to, never read, still lets go of events
// past the age limit: appends apply it, not only Read and Info. What the
// store holds is seen through weak pointers to each event's Task, which the
// collector clears once the store no longer keeps the event.
func TestMemoryStoreRetentionByAgeOnAppendAlone(t *testing.T) {
	s := server.NewMemoryStore(server.MemoryOptions{MaxAge: time.Hour})
	defer s.Close()
	now := time.Now().UTC()
	// appendHeld appends one event and returns a weak pointer to its Task
	// and its seq; the caller keeps no other reference to the event.
	appendHeld := func(text string, at time.Time) (weak.Pointer[protocol.Task], uint64, string) {
		ev := memMsg(text, at)
		ev.Task = &protocol.Task{ID: text}
		wp := weak.Make(ev.Task)
		out := memAppend(t, s, "room/a", ev)
		return wp, out[0].Seq, out[0].Epoch
	}
	held := func(wp weak.Pointer[protocol.Task]) bool {
		runtime.GC()
		return wp.Value() != nil
	}

	// Already past the limit when appended.
	stale, seq1, epoch := appendHeld("stale", now.Add(-2*time.Hour))
	if held(stale) {
		t.Fatal("an event past the age limit is still held after the append that stored it")
	}
	// Within the limit when appended (unless this machine is slow), past it
	// once the sleep below is over.
	aging, seq2, _ := appendHeld("aging", time.Now().Add(-time.Hour+20*time.Millisecond))
	fresh, seq3, _ := appendHeld("fresh", now)
	if !held(fresh) {
		t.Fatal("an event within the age limit was dropped")
	}
	time.Sleep(30 * time.Millisecond)
	last, seq4, epoch4 := appendHeld("last", time.Now())
	if held(aging) {
		t.Fatal("an event that aged past the limit is still held after a later append, with no read in between")
	}
	if !held(fresh) || !held(last) {
		t.Fatal("an append dropped events within the age limit")
	}
	if seq1 != 1 || seq2 != 2 || seq3 != 3 || seq4 != 4 || epoch4 != epoch {
		t.Fatalf("seqs %d %d %d %d, epochs %s %s; want 1..4 in one epoch", seq1, seq2, seq3, seq4, epoch, epoch4)
	}
	// Reads see the same: the first seq moved on, the epoch did not.
	evs, info := storetest.Read(t, s, "room/a", 0, 10)
	if info.Epoch != epoch || info.First != 3 || info.Last != 4 || len(evs) != 2 || evs[0].Text != "fresh" || evs[1].Text != "last" {
		t.Fatalf("Read after appends alone: %v %+v; want fresh and last at 3..4 in epoch %s", storetest.Seqs(evs), info, epoch)
	}
	if evs, _ := storetest.Read(t, s, "room/a", 1, 10); len(evs) != 2 || evs[0].Seq != 3 {
		t.Fatalf("Read(after 1) = %v; want 3, 4", storetest.Seqs(evs))
	}
}

// Each store gives its streams epochs of its own: a cursor from another
// store (another process) is never taken for this one's.
func TestMemoryStoreEpochsDiffer(t *testing.T) {
	ctx := context.Background()
	seen := map[string]bool{}
	for range 50 {
		s := server.NewMemoryStore(server.MemoryOptions{})
		info, err := s.Info(ctx, "room/a")
		if err != nil {
			t.Fatal(err)
		}
		if seen[info.Epoch] {
			t.Fatalf("epoch %s given twice", info.Epoch)
		}
		if !pushdtest.ValidEpoch(info.Epoch) {
			t.Fatalf("epoch %q is not 1 to 64 of [A-Za-z0-9._-]", info.Epoch)
		}
		seen[info.Epoch] = true
		s.Close()
	}
	if a, b := server.NewEpoch(), server.NewEpoch(); a == b || len(a) != 12 {
		t.Fatalf("NewEpoch gave %q and %q", a, b)
	}
}

func TestMemoryStoreClosed(t *testing.T) {
	ctx := context.Background()
	s := server.NewMemoryStore(server.MemoryOptions{})
	memAppend(t, s, "room/a", memMsg("x", time.Now()))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "room/a", []protocol.Event{memMsg("y", time.Now())}); !errors.Is(err, server.ErrStoreClosed) {
		t.Fatalf("Append after Close: %v; want ErrStoreClosed", err)
	}
	if _, _, err := s.Read(ctx, "room/a", 0, 10); !errors.Is(err, server.ErrStoreClosed) {
		t.Fatalf("Read after Close: %v; want ErrStoreClosed", err)
	}
	if _, err := s.Info(ctx, "room/b"); !errors.Is(err, server.ErrStoreClosed) {
		t.Fatalf("Info after Close: %v; want ErrStoreClosed", err)
	}
}

func TestMemoryStoreReadingKeepsNothing(t *testing.T) {
	m := server.NewMemoryStore(server.MemoryOptions{})
	defer m.Close()
	storetest.ReadUnwritten(t, m, 2000)
	if n := m.HeldStreams(); n != 0 {
		t.Fatalf("after reading 2,000 rooms nobody wrote the store holds %d streams", n)
	}
}

func TestMemoryStoreDropsStreamsThatAgedOut(t *testing.T) {
	m := server.NewMemoryStore(server.MemoryOptions{MaxAge: 400 * time.Millisecond})
	defer m.Close()
	for i := range 3 {
		memAppend(t, m, fmt.Sprintf("room/r%d", i), memMsg("x", time.Now()))
	}
	// Nobody uses them again; the store's next calls, of another stream,
	// sweep them out.
	testwait.Until(t, 20*time.Second, 20*time.Millisecond, func() error {
		if _, err := m.Info(context.Background(), "room/other"); err != nil {
			return err
		}
		if n := m.HeldStreams(); n != 0 {
			return fmt.Errorf("%d of 3 streams still held", n)
		}
		return nil
	})
}
