package server

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/pushd/push/protocol"
)

// newTestHub returns a hub on a memory store, shut down on cleanup.
func newTestHub(t testing.TB, history, tailSize, maxLag int) *Hub {
	t.Helper()
	store := NewMemoryStore(MemoryOptions{MaxEvents: history})
	h := newHub(store, hubConfig{tailSize: tailSize, maxLag: maxLag})
	t.Cleanup(func() {
		h.shutdown()
		store.Close()
	})
	return h
}

func hubMessage(text string) protocol.Event {
	return protocol.Event{Type: protocol.TypeMessage, User: "u", Text: text}
}

// collectN reads n events from sub with next, decoding each entry.
func testCollect(t *testing.T, sub *subscription, n int) []protocol.Event {
	t.Helper()
	ctx := t.Context()
	var out []protocol.Event
	for len(out) < n {
		batch, err := sub.next(ctx, nil)
		if err != nil {
			t.Fatalf("next after %d events: %v", len(out), err)
		}
		for _, e := range batch {
			out = append(out, testDecodeEntry(t, e))
		}
	}
	return out
}

func testDecodeEntry(t testing.TB, e *entry) protocol.Event {
	t.Helper()
	var ev protocol.Event
	if err := json.Unmarshal(e.json(), &ev); err != nil {
		t.Fatalf("entry %q: %v", e.frame, err)
	}
	if ev.Seq != e.seq {
		t.Fatalf("entry of seq %d holds event %d", e.seq, ev.Seq)
	}
	return ev
}

// A subscription whose cursor fell behind the in-memory tail reads the
// rest from the store, then the tail, in order and without gaps.
func TestHubSubscriptionCatchesUpFromStore(t *testing.T) {
	ctx := t.Context()
	h := newTestHub(t, 0, 8, 1<<20)
	sub, err := h.subscribe(ctx, "s", nil, "", 16)
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	for i := range n {
		if _, err := h.Publish(ctx, "s", hubMessage(strconv.Itoa(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	evs := testCollect(t, sub, n)
	for i, ev := range evs {
		if ev.Seq != uint64(i+1) || ev.Text != strconv.Itoa(i+1) {
			t.Fatalf("event %d: seq %d text %q", i, ev.Seq, ev.Text)
		}
	}
	if c := sub.Cursor(); c.Seq != n {
		t.Fatalf("cursor %s after %d events", c, n)
	}
}

// A live subscription that falls more than maxLag behind ends with
// ErrSlowConsumer; a new one from its cursor gets the rest.
func TestHubSlowConsumer(t *testing.T) {
	ctx := t.Context()
	h := newTestHub(t, 0, 8, 4)
	sub, err := h.subscribe(ctx, "s", nil, "", 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Publish(ctx, "s", hubMessage("1")); err != nil {
		t.Fatal(err)
	}
	testCollect(t, sub, 1)
	// It finds nothing more and would wait: from now on it is live.
	idle := make(chan time.Time, 1)
	idle <- time.Now()
	if _, err := sub.next(ctx, idle); !errors.Is(err, errIdle) {
		t.Fatalf("next at the head with idle fired: %v; want errIdle", err)
	}
	for i := 2; i <= 10; i++ {
		if _, err := h.Publish(ctx, "s", hubMessage(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sub.next(ctx, nil); !errors.Is(err, ErrSlowConsumer) {
		t.Fatalf("next 9 behind with maxLag 4: %v; want ErrSlowConsumer", err)
	}
	c := sub.Cursor()
	again, err := h.subscribe(ctx, "s", &c, "", 2)
	if err != nil {
		t.Fatal(err)
	}
	evs := testCollect(t, again, 9)
	if evs[0].Seq != 2 || evs[8].Seq != 10 {
		t.Fatalf("resumed from %s: %d..%d; want 2..10", c, evs[0].Seq, evs[8].Seq)
	}
}

// A subscriber catching up from the store gets nothing past the hub's
// head, even when the store already holds more (an append the hub has not
// announced yet): otherwise it would resume ahead of the stream and get a
// cursor_ahead reset and every event again.
func TestCatchUpStopsAtTheHubsHead(t *testing.T) {
	ctx := context.Background()
	store := NewMemoryStore(MemoryOptions{})
	h := newHub(store, hubConfig{tailSize: 8, maxLag: 1 << 20})
	defer h.shutdown()
	name := protocol.RoomStream("lobby")
	for range 20 {
		if _, err := h.Publish(ctx, name, protocol.Event{Type: protocol.TypeMessage, User: "u", Text: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	// Two more in the store that the hub has not announced.
	if _, err := store.Append(ctx, name, []protocol.Event{{Type: protocol.TypeMessage, User: "u", Text: "early"}, {Type: protocol.TypeMessage, User: "u", Text: "early"}}); err != nil {
		t.Fatal(err)
	}
	sub, err := h.subscribe(ctx, name, &protocol.Cursor{Seq: 0}, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for range 10 {
		batch, _, err := sub.collect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(batch) == 0 {
			break
		}
		for _, e := range batch {
			got = append(got, e.seq)
		}
	}
	if len(got) != 20 || got[19] != 20 || sub.Cursor().Seq != 20 {
		t.Fatalf("caught up to %v, cursor %v; want seqs 1..20 and cursor 20 (the hub's head)", got, sub.Cursor())
	}
}
