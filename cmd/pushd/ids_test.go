package main

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/pushd/push/internal/pushdtest"
)

func TestMessageIDsOutliveKillNine(t *testing.T) {
	data := t.TempDir()
	post := func(p *pushdtest.Process, text string) pushdtest.Answer {
		return p.Post(t, "/v1/rooms/ids/messages", fmt.Sprintf(`{"user":"tester","text":%q,"id":"msg-1"}`, text))
	}
	p := startPushd(t, "--data", data, "--publish-rate", "0")
	first := post(p, "hello")
	if first.Status != http.StatusCreated {
		t.Fatalf("first publish: %d %s", first.Status, first.Body)
	}
	ev := pushdtest.CheckEvent(t, first.Body)
	p.Kill(t)

	p = startPushd(t, "--data", data, "--publish-rate", "0")
	if again := post(p, "hello"); again.Status != http.StatusOK || string(again.Body) != string(first.Body) {
		t.Fatalf("after SIGKILL and restart, a repeat of msg-1: %d %s; want 200 and the first answer %s", again.Status, again.Body, first.Body)
	}
	if other := post(p, "other"); other.Status != http.StatusConflict {
		t.Fatalf("other text under msg-1 after restart: %d %s; want 409", other.Status, other.Body)
	}
	pushdtest.CheckMessages(t, p.History(t, pushdtest.RoomPath("ids")), ev.Epoch, ev.Seq, []string{"hello"})
}
