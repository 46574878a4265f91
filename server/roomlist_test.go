package server_test

import (
	"fmt"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

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
