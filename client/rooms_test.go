package client_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/pushd/push/client"
	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
)

// Rooms lists the rooms in use; ReadBefore reads a room back page by
// page to its start.
func TestRoomsAndReadBefore(t *testing.T) {
	s := startPushd(t)
	for i := 1; i <= 5; i++ {
		s.Publish(t, "lobby", "ann", fmt.Sprintf("m-%d", i))
	}
	c, err := client.New(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	rooms, err := c.Rooms(ctx)
	if err != nil || len(rooms) != 1 || rooms[0] != (protocol.RoomInfo{Name: "lobby"}) {
		t.Fatalf("Rooms = %+v, %v", rooms, err)
	}
	head, err := c.Cursor(ctx, client.Room("lobby"))
	if err != nil {
		t.Fatal(err)
	}
	before := protocol.Cursor{Epoch: head.Epoch, Seq: head.Seq + 1}
	var got []protocol.Event
	for {
		p, err := c.ReadBefore(ctx, "lobby", before, 2)
		if err != nil {
			t.Fatal(err)
		}
		got = append(p.Events, got...)
		if p.Before == "" {
			break
		}
		if before, err = protocol.ParseCursor(p.Before); err != nil {
			t.Fatal(err)
		}
	}
	pushdtest.CheckMessages(t, got, head.Epoch, 1, pushdtest.Texts("m", 5))
	var pe *protocol.Error
	if _, err := c.ReadBefore(ctx, "lobby", protocol.Cursor{Epoch: "gone", Seq: 3}, 0); !errors.As(err, &pe) || pe.Status != http.StatusConflict {
		t.Fatalf("a cursor of another epoch: %v", err)
	}
}
