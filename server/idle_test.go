package server

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
)

// held reports whether the hub has the named stream in memory.
func held(h *Hub, name string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.streams[name]
	return ok
}

// A stream that no one uses leaves memory after the idle time, and one in
// use never does; a dropped stream comes back from the store as it was,
// so cursors handed out before stay good.
func TestIdleStreamLeavesMemory(t *testing.T) {
	h := newTestHub(t, 0, 8, 1000)
	h.setStreamIdle(time.Hour)
	ctx := t.Context()
	const idle, busy = "room/idle", "room/busy"

	var last protocol.Event
	for i := range 3 {
		ev, err := h.Publish(ctx, idle, hubMessage("before"+string(rune('a'+i))))
		if err != nil {
			t.Fatal(err)
		}
		last = ev
	}
	cursor := protocol.Cursor{Epoch: last.Epoch, Seq: last.Seq}
	live, err := h.subscribe(ctx, busy, nil, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	defer live.close()
	// Within the idle time the unused stream stays.
	if !held(h, idle) {
		t.Fatalf("%s was dropped within its idle time", idle)
	}

	// Once past the idle time, a use of the hub drops the idle stream, not
	// the one with a subscriber.
	h.setStreamIdle(20 * time.Millisecond)
	testwait.Until(t, 5*time.Second, 5*time.Millisecond, func() error {
		st, err := h.acquire(ctx, busy, true)
		if err != nil {
			t.Fatal(err)
		}
		h.release(st)
		if held(h, idle) {
			return fmt.Errorf("%s is still in memory after its last use", idle)
		}
		return nil
	})
	if _, err := h.Publish(ctx, busy, hubMessage("wake")); err != nil {
		t.Fatal(err)
	}
	if !held(h, busy) {
		t.Fatalf("%s, which has a subscriber, was dropped", busy)
	}
	if got := testCollect(t, live, 1); got[0].Text != "wake" {
		t.Fatalf("the live subscriber got %q; want wake", got[0].Text)
	}

	// The dropped stream comes back where it was: new events follow on,
	// and the old cursor resumes without a reset.
	next, err := h.Publish(ctx, idle, hubMessage("after"))
	if err != nil {
		t.Fatal(err)
	}
	if next.Seq != last.Seq+1 || next.Epoch != last.Epoch {
		t.Fatalf("after coming back the stream appended seq %d epoch %s; want %d %s", next.Seq, next.Epoch, last.Seq+1, last.Epoch)
	}
	again, err := h.subscribe(ctx, idle, &cursor, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	defer again.close()
	got := testCollect(t, again, 1)
	if got[0].Type != protocol.TypeMessage || got[0].Text != "after" || got[0].Seq != next.Seq {
		t.Fatalf("resuming at %v got %+v; want the message after it", cursor, got[0])
	}
}

// The room limit counts streams in use: an idle stream makes room for a
// new one at once, and only when every stream is in use is one refused.
func TestStreamLimitCountsStreamsInUse(t *testing.T) {
	h := newTestHub(t, 0, 8, 1000)
	h.cfg.maxStreams = 2
	ctx := t.Context()
	if _, err := h.Publish(ctx, "room/a", hubMessage("a")); err != nil {
		t.Fatal(err)
	}
	b, err := h.subscribe(ctx, "room/b", nil, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	// room/a is idle (its publish is over), so room/c takes its place.
	c, err := h.subscribe(ctx, "room/c", nil, "", 100)
	if err != nil {
		t.Fatalf("a new stream while another is idle: %v", err)
	}
	defer c.close()
	if held(h, "room/a") {
		t.Fatal("room/a is still in memory beside two streams in use at a limit of two")
	}
	// Both held streams are in use now: a client's new room is refused.
	if _, err := h.publish(ctx, "room/d", hubMessage("d"), true); !errors.Is(err, ErrTooManyStreams) {
		t.Fatalf("a third room with two in use at a limit of two: %v; want ErrTooManyStreams", err)
	}
	if _, err := h.subscribe(ctx, "room/d", nil, "", 100); !errors.Is(err, ErrTooManyStreams) {
		t.Fatalf("a subscription to a third room with two in use at a limit of two: %v; want ErrTooManyStreams", err)
	}
	// What the server publishes itself (a logout, task progress) and its
	// own streams are never refused.
	if _, err := h.Publish(ctx, "room/e", protocol.Event{Type: protocol.TypeLogout, User: "u"}); err != nil {
		t.Fatalf("a logout in a room not in memory at the limit: %v", err)
	}
	tasks, err := h.subscribe(ctx, protocol.TasksStream, nil, "", 100)
	if err != nil {
		t.Fatalf("a subscription to the tasks stream at the limit: %v", err)
	}
	tasks.close()
	// Letting go of a subscription makes room again.
	c.close()
	if _, err := h.publish(ctx, "room/d", hubMessage("d"), true); err != nil {
		t.Fatalf("a new room after one was let go: %v", err)
	}
}

// infoGatedStore holds the first Info of one stream until gate is closed,
// after reading it: that Info answers as the store was before.
type infoGatedStore struct {
	*MemoryStore
	stream  string
	held    atomic.Bool
	entered chan struct{}
	gate    chan struct{}
}

func (g *infoGatedStore) Info(ctx context.Context, stream string) (StreamInfo, error) {
	info, err := g.MemoryStore.Info(ctx, stream)
	if stream == g.stream && g.held.CompareAndSwap(false, true) {
		close(g.entered)
		<-g.gate
	}
	return info, err
}

// A stream loaded from the store while the same stream is made, used and
// dropped meanwhile is read again: its tail starts after the events
// appended meanwhile, not before them.
func TestStreamLoadedWhileDroppedIsReadAgain(t *testing.T) {
	const name = "room/x"
	store := &infoGatedStore{MemoryStore: NewMemoryStore(MemoryOptions{}), stream: name, entered: make(chan struct{}), gate: make(chan struct{})}
	h := newHub(store, hubConfig{tailSize: 8, maxLag: 1000})
	t.Cleanup(func() {
		h.shutdown()
		store.Close()
	})
	ctx := t.Context()
	loaded := make(chan *stream, 1)
	go func() {
		st, err := h.acquire(ctx, name, true)
		if err != nil {
			t.Error(err)
		}
		loaded <- st
	}()
	<-store.entered // its Info has read the stream as empty

	// Meanwhile the stream is made, gets an event, and is dropped.
	first, err := h.Publish(ctx, name, hubMessage("a"))
	if err != nil {
		t.Fatal(err)
	}
	h.setStreamIdle(time.Nanosecond)
	other, err := h.acquire(ctx, "room/other", true)
	if err != nil {
		t.Fatal(err)
	}
	h.release(other)
	if held(h, name) {
		t.Fatalf("%s is still in memory", name)
	}
	h.setStreamIdle(time.Hour)

	close(store.gate)
	st := <-loaded
	if st == nil {
		t.FailNow()
	}
	h.release(st)
	second, err := h.Publish(ctx, name, hubMessage("b"))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := h.subscribe(ctx, name, &protocol.Cursor{Epoch: first.Epoch, Seq: 0}, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.close()
	got := testCollect(t, sub, 2)
	if got[0].Text != "a" || got[1].Text != "b" || got[1].Seq != second.Seq {
		t.Fatalf("the stream from the start: %+v; want a then b", got)
	}
}
