package bench

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pushd/push/protocol"
)

func TestPayloadRoundTrip(t *testing.T) {
	sent := time.Date(2026, 11, 23, 8, 30, 0, 123456789, time.UTC).UnixNano()
	for _, size := range []int{1, 40, 64, 16384} {
		text := appendPayload(nil, "r1x", 3, 12345, sent, size)
		if size >= 40 && len(text) != size {
			t.Errorf("size %d: text of %d bytes", size, len(text))
		}
		got, ok := parsePayload(text, "r1x")
		if !ok || got != (stamp{pub: 3, seq: 12345, sent: sent}) {
			t.Errorf("size %d: parsePayload(%.60q...) = %+v, %v", size, text, got, ok)
		}
	}
	for _, text := range []string{"", "r1x", "r1x:", "r1x:1:2:3", "r1y:1:2:3:", "r1x:1:a:3:", "hello"} {
		if got, ok := parsePayload([]byte(text), "r1x"); ok {
			t.Errorf("parsePayload(%q) = %+v, want not ours", text, got)
		}
	}
}

// scanEvent reads what encoding/json would from the server's events.
func TestScanEvent(t *testing.T) {
	text := string(appendPayload(nil, "run", 1, 2, 3, 100))
	events := []protocol.Event{
		{Seq: 42, Epoch: "k3x9q2m7b1c4", Stream: "room/lobby", Type: protocol.TypeMessage, Time: time.Now(), User: "bench", Text: text},
		{Seq: 7, Epoch: "e", Stream: "room/lobby", Type: protocol.TypeLogin, Time: time.Now(), User: "alice"},
		{Seq: 0, Epoch: "e.1", Stream: "room/lobby", Type: protocol.TypeReset, Time: time.Now(), Reason: protocol.ResetEpochChanged},
		{Seq: 9, Epoch: "e", Stream: "room/lobby", Type: protocol.TypeMessage, Time: time.Now(), User: "bob", Text: `he said "text":"x" and \ left`},
	}
	for _, e := range events {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := scanEvent(b)
		if err != nil {
			t.Fatalf("scanEvent(%s): %v", b, err)
		}
		if ev.seq != e.Seq || string(ev.epoch) != e.Epoch || string(ev.typ) != string(e.Type) {
			t.Errorf("scanEvent(%s) = seq %d epoch %q type %q", b, ev.seq, ev.epoch, ev.typ)
		}
		if e.Text != "" && !strings.HasPrefix(string(ev.text), strings.SplitN(e.Text, `"`, 2)[0]) {
			t.Errorf("scanEvent(%s): text starts %q", b, ev.text)
		}
	}
	for _, bad := range []string{``, `{}`, `{"seq":"1","epoch":"e","type":"message"}`, `{"seq":1,"type":"message"}`, `{"seq":1,"epoch":"e"}`, `{"seq":99999999999999999999999,"epoch":"e","type":"message"}`} {
		if _, err := scanEvent([]byte(bad)); err == nil {
			t.Errorf("scanEvent(%s): no error", bad)
		}
	}
}
