package server

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/pushd/push/protocol"
)

// A subscriber catching up from the store gets nothing past the hub's
// head, even when the store already holds more (an append the hub has not
// announced yet): otherwise it would resume ahead of the stream and get a
// cursor_ahead reset and every event again.
func TestCatchUpStopsAtTheHubsHead(t *testing.T) {
	ctx := context.Background()
	store := NewMemoryStore(0, 0)
	h := newHub(store, 0, 8, 1<<20, 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
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
