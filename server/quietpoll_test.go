package server_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/server"
)

// A poll that does not wait (wait=0, HEAD) logs no one in by itself: an
// <img> with ?user= on a page changes nothing. A client that keeps short
// polling is logged in at its second poll within the grace period, and a
// long poll or a stream logs in at once.
func TestQuietPollLogsNoOneIn(t *testing.T) {
	s := pushdtest.Start(t, server.Config{PresenceGrace: time.Minute})
	room := pushdtest.RoomPath("lobby")

	s.Poll(t, room, "user=img&wait=0")
	s.Expect(t, http.MethodHead, room+"?user=head", "", http.StatusOK, nil)
	wantPresence(t, s, "lobby")
	wantPresenceEvents(t, s, "lobby")

	s.Poll(t, room, "user=img&wait=0")
	wantPresence(t, s, "lobby", "img")
	wantPresenceEvents(t, s, "lobby", "login img")

	long := s.PollAsync(t, room, "user=ann&wait=5s")
	testwait.Until(t, pushdtest.Timeout, 5*time.Millisecond, func() error {
		if got := s.Presence(t, "lobby"); len(got) != 2 {
			return fmt.Errorf("presence %q; want ann and img", got)
		}
		return nil
	})
	testwait.Recv(t, pushdtest.Timeout, long, "the long poll's answer (ann's login)")
	wantPresenceEvents(t, s, "lobby", "login img", "login ann")
}

// Reading rooms that nobody writes to leaves nothing in memory once the
// readers have gone: not the streams, not their presence.
func TestEmptyRoomsLeaveMemoryWithTheirLastReader(t *testing.T) {
	s := pushdtest.Start(t, server.Config{PresenceGrace: 50 * time.Millisecond, StreamIdle: time.Hour})
	base, err := s.Metric(t, "pushd_streams")
	if err != nil {
		t.Fatal(err)
	}
	streams := func() float64 {
		n, err := s.Metric(t, "pushd_streams")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for i := range 200 {
		s.Poll(t, pushdtest.RoomPath(fmt.Sprintf("probe-%d", i)), "since=0&wait=0")
	}
	if n := streams(); n != base {
		t.Fatalf("after short polls of 200 new rooms: %v streams in memory; want %v as before", n, base)
	}
	subs := []*pushdtest.Subscriber{
		s.Subscribe(t, pushdtest.SSE, pushdtest.RoomPath("quiet-a"), pushdtest.SubOptions{User: "ann"}),
		s.Subscribe(t, pushdtest.WS, pushdtest.RoomPath("quiet-b"), pushdtest.SubOptions{}),
	}
	// quiet-a holds ann's login now; quiet-b nothing.
	if n := streams(); n != base+2 {
		t.Fatalf("with subscribers in two rooms: %v streams; want %v", n, base+2)
	}
	for _, sub := range subs {
		sub.Close()
	}
	testwait.Until(t, pushdtest.Timeout, 5*time.Millisecond, func() error {
		if n := streams(); n != base+1 {
			return fmt.Errorf("%v streams in memory once the subscribers left; want %v: the room that had an event stays, the empty one goes", n, base+1)
		}
		return nil
	})
}

// A user counted in by a quiet poll who posts is logged in first: their
// login comes before their message, as for a client of any transport.
func TestQuietPollerWhoPostsIsLoggedInFirst(t *testing.T) {
	s := pushdtest.Start(t, server.Config{PresenceGrace: time.Minute})
	s.Poll(t, pushdtest.RoomPath("lobby"), "user=sam&wait=0")
	wantPresenceEvents(t, s, "lobby")
	s.Publish(t, "lobby", "sam", "hello")
	s.Publish(t, "lobby", "sam", "again")
	wantPresenceEvents(t, s, "lobby", "login sam", "message hello", "message again")
	wantPresence(t, s, "lobby", "sam")
	// Someone who has not polled posts without logging in.
	s.Publish(t, "lobby", "tom", "drive-by")
	wantPresenceEvents(t, s, "lobby", "login sam", "message hello", "message again", "message drive-by")
}
