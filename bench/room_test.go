package bench

import (
	"testing"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// Runs against one server use one room, DefaultRoom, instead of leaving a
// room each in its store; each run reads only its own messages, though the
// room holds the earlier runs' too.
func TestRunsShareTheDefaultRoom(t *testing.T) {
	srv := pushdtest.Start(t, server.Config{})
	const runs = 2
	for range runs {
		o := small(WebSocket)
		o.Room = ""
		o.Targets = []string{srv.URL}
		if rep := runOK(t, o); rep.Room != DefaultRoom {
			t.Fatalf("room %q; want %q", rep.Room, DefaultRoom)
		}
	}
	messages := 0
	for _, ev := range srv.History(t, pushdtest.RoomPath(DefaultRoom)) {
		if ev.Type == protocol.TypeMessage {
			messages++
		}
	}
	if want := runs * small(WebSocket).Messages; messages != want {
		t.Errorf("room %s holds %d messages; want the %d of both runs", DefaultRoom, messages, want)
	}
}
