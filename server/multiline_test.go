package server_test

import (
	"net/http"
	"testing"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// A message's text may hold line breaks and tabs: it is stored as sent and
// reaches subscribers whole on every transport (SSE's data line carries
// the newline escaped by JSON, so the frame stays one line), and a
// backwards read returns it too.
func TestMultiLineMessage(t *testing.T) {
	s := pushdtest.Start(t, server.Config{})
	const text = "first line\nsecond line\n\tindented\n\nafter a blank line"
	subs := map[string]*pushdtest.Subscriber{}
	for _, kind := range append(pushdtest.Transports, pushdtest.ShortPoll) {
		subs[kind] = s.Subscribe(t, kind, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{Since: "0"})
	}
	ev := s.Publish(t, "lobby", "ann", text)
	if ev.Text != text {
		t.Fatalf("stored %q, want %q", ev.Text, text)
	}
	for kind, sub := range subs {
		if got := sub.Next(t); got.Text != text || got.Seq != ev.Seq {
			t.Errorf("%s: %s, want the text whole", kind, pushdtest.OneLine(got))
		}
	}
	var p protocol.Page
	s.Expect(t, http.MethodGet, pushdtest.RoomPath("lobby")+"?before=100", "", http.StatusOK, &p)
	if len(p.Events) != 1 || p.Events[0].Text != text {
		t.Fatalf("backwards read: %s", pushdtest.Summary(p.Events))
	}
}
