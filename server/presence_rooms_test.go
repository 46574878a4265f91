package server

import (
	"fmt"
	"testing"
	"time"

	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
)

// roomsHeld returns how many rooms presence holds.
func roomsHeld(p *presence) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.rooms)
}

// Presence holds only the rooms someone is in: a quiet poll's pending
// user is let go after the grace period without a logout, and a room
// whose last user has logged out is let go too.
func TestPresenceLetsGoOfEmptyRooms(t *testing.T) {
	h := newTestHub(t, 0, 8, 1000)
	p := newPresence(h, 20*time.Millisecond, nil, nil)
	t.Cleanup(p.stop)
	ctx := t.Context()
	for i := range 100 {
		room := fmt.Sprintf("r%d", i)
		if err := p.join(ctx, room, "img", true); err != nil {
			t.Fatal(err)
		}
		p.leave(room, "img")
	}
	if err := p.join(ctx, "lobby", "ann", false); err != nil {
		t.Fatal(err)
	}
	p.leave("lobby", "ann")
	testwait.Until(t, 10*time.Second, 5*time.Millisecond, func() error {
		if n := roomsHeld(p); n != 0 {
			return fmt.Errorf("presence holds %d rooms after everyone left", n)
		}
		return nil
	})
	for i := range 100 {
		if info, err := h.store.Info(ctx, protocol.RoomStream(fmt.Sprintf("r%d", i))); err != nil || info.Last != 0 {
			t.Fatalf("room r%d after a quiet poll: %+v %v; want no event (no login, no logout)", i, info, err)
		}
	}
	events, _, err := h.store.Read(ctx, protocol.RoomStream("lobby"), 0, 10)
	if err != nil || len(events) != 2 || events[0].Type != protocol.TypeLogin || events[1].Type != protocol.TypeLogout {
		t.Fatalf("lobby: %+v %v; want ann's login and logout", events, err)
	}
	// A room taken again after it was let go works as before.
	if err := p.join(ctx, "lobby", "ann", false); err != nil {
		t.Fatal(err)
	}
	if got := p.users("lobby"); len(got) != 1 || got[0] != "ann" {
		t.Fatalf("lobby after ann came back: %q", got)
	}
	p.leave("lobby", "ann")
}
