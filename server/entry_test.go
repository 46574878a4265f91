package server

import (
	"testing"
	"time"

	"github.com/pushd/push/protocol"
)

// encodeEntry builds the SSE frame and the JSON in one buffer: the frame
// is exactly "id: <cursor>\nevent: <type>\ndata: <json>\n\n", and the JSON
// keeps <, > and & as they are.
func TestEncodeEntry(t *testing.T) {
	ev := protocol.Event{Seq: 42, Epoch: "k3x9q2m7b1c4", Stream: "room/lobby", Type: protocol.TypeMessage,
		Time: time.Date(2026, 11, 23, 8, 30, 0, 123456789, time.UTC), User: "alice", Text: "<b>hi</b> & \"bye\"\n"}
	e, err := encodeEntry(&ev)
	if err != nil {
		t.Fatal(err)
	}
	const wantJSON = `{"seq":42,"epoch":"k3x9q2m7b1c4","stream":"room/lobby","type":"message","time":"2026-11-23T08:30:00.123456789Z","user":"alice","text":"<b>hi</b> & \"bye\"\n"}`
	if got := string(e.json()); got != wantJSON {
		t.Fatalf("json:\n%s\nwant\n%s", got, wantJSON)
	}
	if want := "id: k3x9q2m7b1c4:42\nevent: message\ndata: " + wantJSON + "\n\n"; string(e.frame) != want {
		t.Fatalf("frame:\n%q\nwant\n%q", e.frame, want)
	}
	if e.seq != 42 || e.key != "" || e.final {
		t.Fatalf("entry fields: %+v", e)
	}
	task := protocol.Event{Seq: 7, Epoch: "e", Stream: protocol.TasksStream, Type: protocol.TypeProgress, Time: ev.Time,
		Task: &protocol.Task{ID: "t1", Kind: "demo", State: protocol.TaskSucceeded}}
	if e, err = encodeEntry(&task); err != nil || e.key != "t1" || !e.final {
		t.Fatalf("progress entry: %+v, %v; want key t1, final", e, err)
	}
}
