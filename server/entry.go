package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/pushd/push/protocol"
)

// entry is one event encoded once, shared read-only by every subscriber and
// every transport: frame is the complete SSE frame, and the event's JSON
// (the WebSocket message and the long-poll array element) is a slice of it.
type entry struct {
	seq   uint64
	key   string     // what one-task subscriptions filter on: the task id
	scope *taskScope // a task's scope, which tasks-stream subscribers filter on
	frame []byte     // "id: <epoch>:<seq>\nevent: <type>\ndata: <json>\n\n"
	data  int        // offset of the JSON in frame
	final bool       // a progress event whose task reached an end state
	// published is when the hub appended the event, for the delivery
	// latency metric; zero for events read back from the store.
	published time.Time
}

// json returns the event's JSON, without a trailing newline.
func (e *entry) json() []byte { return e.frame[e.data : len(e.frame)-2] }

// encodeEntry encodes ev into an entry: the frame is built in one buffer,
// the JSON written straight into it.
func encodeEntry(ev *protocol.Event) (*entry, error) {
	var buf bytes.Buffer
	buf.Grow(len(ev.Text) + len(ev.Epoch) + 256)
	buf.WriteString("id: ")
	buf.WriteString(ev.Epoch)
	buf.WriteByte(':')
	buf.Write(strconv.AppendUint(buf.AvailableBuffer(), ev.Seq, 10))
	buf.WriteString("\nevent: ")
	buf.WriteString(string(ev.Type))
	buf.WriteString("\ndata: ")
	data := buf.Len()
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil { // ends the JSON with "\n"
		return nil, fmt.Errorf("encode event %s:%d: %w", ev.Stream, ev.Seq, err)
	}
	buf.WriteByte('\n')
	e := &entry{seq: ev.Seq, frame: buf.Bytes(), data: data}
	if ev.Task != nil {
		e.key = ev.Task.ID
		e.scope = scopeOf(ev.Task)
		e.final = ev.Task.State.Final()
	}
	return e, nil
}
