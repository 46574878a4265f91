package server_test

import (
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// presenceEvents returns a room's login and logout events as "login alice".
func presenceEvents(t testing.TB, p *pushdtest.Server, room string) []string {
	t.Helper()
	var out []string
	for _, ev := range p.History(t, pushdtest.RoomPath(room)) {
		switch ev.Type {
		case protocol.TypeLogin, protocol.TypeLogout:
			out = append(out, string(ev.Type)+" "+ev.User)
		case protocol.TypeMessage:
			out = append(out, "message "+ev.Text)
		}
	}
	return out
}

func wantPresence(t testing.TB, p *pushdtest.Server, room string, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if got := p.Presence(t, room); !slices.Equal(got, want) {
		t.Fatalf("presence in %s = %q; want %q", room, got, want)
	}
}

func wantPresenceEvents(t testing.TB, p *pushdtest.Server, room string, want ...string) {
	t.Helper()
	if got := presenceEvents(t, p, room); !slices.Equal(got, want) {
		t.Fatalf("events of %s = %q; want %q", room, got, want)
	}
}

// Two connections of one user log in once; the user logs out only when the
// last has closed and the grace period has passed.
func TestPresenceTwoConnectionsOneLogin(t *testing.T) {
	p := pushdtest.Start(t, server.Config{PresenceGrace: 200 * time.Millisecond})
	ws := p.Subscribe(t, pushdtest.WS, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{User: "alice"})
	sse := p.Subscribe(t, pushdtest.SSE, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{User: "alice"})
	wantPresence(t, p, "lobby", "alice")
	p.Publish(t, "lobby", "bob", "one")
	wantPresenceEvents(t, p, "lobby", "login alice", "message one")

	// Closing one of the two changes nothing, however long we wait: the
	// second connection keeps alice in.
	ws.Close()
	p.WaitConnections(t, "ws", 0)
	p.Publish(t, "lobby", "bob", "two")
	wantPresence(t, p, "lobby", "alice")
	wantPresenceEvents(t, p, "lobby", "login alice", "message one", "message two")

	sse.Close()
	testwait.Until(t, pushdtest.Timeout, 10*time.Millisecond, func() error {
		if got := p.Presence(t, "lobby"); len(got) != 0 {
			return fmt.Errorf("present: %q", got)
		}
		return nil
	})
	wantPresenceEvents(t, p, "lobby", "login alice", "message one", "message two", "logout alice")
}

// A user whose connection drops and comes back within the grace period
// neither logs out nor logs in again.
func TestPresenceReconnectWithinGraceDoesNotFlap(t *testing.T) {
	for _, kind := range []string{pushdtest.WS, pushdtest.SSE} {
		t.Run(kind, func(t *testing.T) {
			p := pushdtest.Start(t, server.Config{PresenceGrace: time.Minute})
			sub := p.Subscribe(t, kind, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{User: "alice"})
			sub.Close()
			// The server has seen the connection end (and started the
			// grace period) once the connection is no longer counted.
			p.WaitConnections(t, transportOf(kind), 0)
			wantPresence(t, p, "lobby", "alice")
			p.Subscribe(t, kind, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{User: "alice"})
			p.Publish(t, "lobby", "bob", "marker")
			wantPresence(t, p, "lobby", "alice")
			wantPresenceEvents(t, p, "lobby", "login alice", "message marker")
		})
	}
}

// After the grace period without a connection the user logs out, once.
func TestPresenceLogoutAfterGrace(t *testing.T) {
	p := pushdtest.Start(t, server.Config{PresenceGrace: 200 * time.Millisecond})
	watcher := p.Subscribe(t, pushdtest.WS, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{Since: "0"})
	alice := p.Subscribe(t, pushdtest.WS, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{User: "alice"})
	bob := p.Subscribe(t, pushdtest.SSE, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{User: "bob"})
	alice.Close()
	testwait.Until(t, pushdtest.Timeout, 10*time.Millisecond, func() error {
		if got := p.Presence(t, "lobby"); !slices.Equal(got, []string{"bob"}) {
			return fmt.Errorf("present: %q; want bob alone", got)
		}
		return nil
	})
	bob.Close()
	testwait.Until(t, pushdtest.Timeout, 10*time.Millisecond, func() error {
		if got := p.Presence(t, "lobby"); len(got) != 0 {
			return fmt.Errorf("present: %q; want nobody", got)
		}
		return nil
	})
	var got []string
	for len(got) < 4 {
		ev := watcher.Next(t)
		got = append(got, string(ev.Type)+" "+ev.User)
	}
	if want := []string{"login alice", "login bob", "logout alice", "logout bob"}; !slices.Equal(got, want) {
		t.Fatalf("watcher saw %q; want %q", got, want)
	}
	wantPresenceEvents(t, p, "lobby", "login alice", "login bob", "logout alice", "logout bob")
}

// A long-poll client with user= is present while it keeps polling, without
// a login per poll.
func TestPresenceLongPollUser(t *testing.T) {
	p := pushdtest.Start(t, server.Config{PresenceGrace: time.Minute})
	head := p.Head(t, pushdtest.RoomPath("lobby"))
	polling := p.PollAsync(t, pushdtest.RoomPath("lobby"), "user=carol&wait=20s&since="+head.String())
	testwait.Until(t, pushdtest.Timeout, 5*time.Millisecond, func() error {
		if got := p.Presence(t, "lobby"); !slices.Equal(got, []string{"carol"}) {
			return fmt.Errorf("present: %q; want carol", got)
		}
		return nil
	})
	first, _ := testwait.Recv(t, pushdtest.Timeout, polling, "answer of the poll") // its own login ends the wait
	evs, cur := first.Events, first.Cursor
	if len(evs) != 1 || evs[0].Type != protocol.TypeLogin || evs[0].User != "carol" {
		t.Fatalf("the poll got %s; want carol's login", pushdtest.Summary(evs))
	}
	// Between polls, and on the next poll, carol stays; no second login.
	wantPresence(t, p, "lobby", "carol")
	p.Publish(t, "lobby", "bob", "hi")
	evs, _ = p.Poll(t, pushdtest.RoomPath("lobby"), "user=carol&wait=20s&since="+cur)
	if len(evs) != 1 || evs[0].Text != "hi" {
		t.Fatalf("second poll got %s; want the message", pushdtest.Summary(evs))
	}
	wantPresence(t, p, "lobby", "carol")
	wantPresenceEvents(t, p, "lobby", "login carol", "message hi")
}

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

// GET presence lists users sorted, and an empty room as [].
func TestPresenceSorted(t *testing.T) {
	p := pushdtest.Start(t, server.Config{})
	wantPresence(t, p, "lobby")
	wantPresence(t, p, "never-used")
	users := []string{"zed", "alice", "Bob", "bob", "_x", "9lives", "carol.b"}
	for i, u := range users {
		kind := pushdtest.WS
		if i%2 == 1 {
			kind = pushdtest.SSE
		}
		p.Subscribe(t, kind, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{User: u})
	}
	wantPresence(t, p, "lobby", "9lives", "Bob", "_x", "alice", "bob", "carol.b", "zed")
	wantPresence(t, p, "other")
}

// rooms returns GET /v1/rooms as name: present, with the headers given.
func rooms(t *testing.T, s *pushdtest.Server, header ...string) map[string]int {
	t.Helper()
	a := s.Get(t, "/v1/rooms", header...)
	if a.Status != http.StatusOK {
		t.Fatalf("GET /v1/rooms: %d %s", a.Status, a.Body)
	}
	var l protocol.RoomList
	a.JSON(t, &l)
	got := map[string]int{}
	for i, r := range l.Rooms {
		if i > 0 && l.Rooms[i-1].Name >= r.Name {
			t.Fatalf("rooms not sorted: %+v", l.Rooms)
		}
		got[r.Name] = r.Present
	}
	return got
}

// GET /v1/rooms lists the rooms in use with how many are present in each,
// and only those the token allows.
func TestRoomList(t *testing.T) {
	s := pushdtest.Start(t, server.Config{AuthSecret: authSecret, PresenceGrace: 50 * time.Millisecond})
	admin := "Bearer " + mint(t, "root", server.Claims{Rooms: []string{"*"}, Publish: true})
	dev := "Bearer " + mint(t, "dan", server.Claims{Rooms: []string{"dev-*"}, Publish: true})

	if got := rooms(t, s, "Authorization", admin); len(got) != 0 {
		t.Fatalf("a new server lists %v", got)
	}
	for _, room := range []string{"lobby", "dev-a", "dev-b"} {
		a := s.Post(t, "/v1/rooms/"+room+"/messages", `{"text":"hi"}`, "Authorization", admin)
		if a.Status != http.StatusCreated {
			t.Fatalf("publish: %d %s", a.Status, a.Body)
		}
	}
	conn := s.DialSSE(t, pushdtest.RoomPath("dev-a")+"?user=dan", "Authorization", dev)
	defer conn.Close()
	want := map[string]int{"lobby": 0, "dev-a": 1, "dev-b": 0}
	testwait.Until(t, pushdtest.Timeout, 5*time.Millisecond, func() error {
		if got := rooms(t, s, "Authorization", admin); !reflect.DeepEqual(got, want) {
			return fmt.Errorf("rooms %v, want %v", got, want)
		}
		return nil
	})
	if got, want := rooms(t, s, "Authorization", dev), map[string]int{"dev-a": 1, "dev-b": 0}; !reflect.DeepEqual(got, want) {
		t.Fatalf("dan's list = %v, want %v", got, want)
	}
	if a := s.Get(t, "/v1/rooms"); a.Status != http.StatusUnauthorized {
		t.Fatalf("without a token: %d %s", a.Status, a.Body)
	}
}
