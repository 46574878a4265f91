package server

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/pushd/push/protocol"
)

// entry is one event encoded once, shared read-only by every subscriber and
// every transport: frame is the complete SSE frame, and the event's JSON
// (the WebSocket message and the long-poll array element) is a slice of it.
type entry struct {
	seq   uint64
	key   string // what one-task subscriptions filter on: the task id
	frame []byte // "id: <epoch>:<seq>\nevent: <type>\ndata: <json>\n\n"
	data  int    // offset of the JSON in frame
	final bool   // a progress event whose task reached an end state
}

// json returns the event's JSON, without a trailing newline.
func (e *entry) json() []byte { return e.frame[e.data : len(e.frame)-2] }

// encodeEntry encodes ev into an entry.
func encodeEntry(ev *protocol.Event) (*entry, error) {
	js, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode event %s:%d: %w", ev.Stream, ev.Seq, err)
	}
	frame := make([]byte, 0, len(js)+len(ev.Epoch)+len(ev.Type)+48)
	frame = append(frame, "id: "...)
	frame = append(frame, ev.Epoch...)
	frame = append(frame, ':')
	frame = strconv.AppendUint(frame, ev.Seq, 10)
	frame = append(frame, "\nevent: "...)
	frame = append(frame, ev.Type...)
	frame = append(frame, "\ndata: "...)
	data := len(frame)
	frame = append(frame, js...)
	frame = append(frame, "\n\n"...)
	e := &entry{seq: ev.Seq, frame: frame, data: data}
	if ev.Task != nil {
		e.key = ev.Task.ID
		e.final = ev.Task.State.Final()
	}
	return e, nil
}
