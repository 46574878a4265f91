package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pushd/push/protocol"
)

// postWithID publishes text with an id and returns the status and body.
func postWithID(t *testing.T, base, room, text, id string) (int, string) {
	t.Helper()
	body := fmt.Sprintf(`{"user":"tester","text":%q,"id":%q}`, text, id)
	resp, err := http.Post(base+"/v1/rooms/"+room+"/messages", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestMessageIDsOutliveKillNine(t *testing.T) {
	data := t.TempDir()
	p := startPushd(t, "--data", data, "--publish-rate", "0")
	status, first := postWithID(t, p.url, "ids", "hello", "msg-1")
	if status != http.StatusCreated {
		t.Fatalf("first publish: %d %s", status, first)
	}
	p.kill(t)

	p = startPushd(t, "--data", data, "--publish-rate", "0")
	status, again := postWithID(t, p.url, "ids", "hello", "msg-1")
	if status != http.StatusOK || again != first {
		t.Fatalf("after SIGKILL and restart, a repeat of msg-1: %d %s; want 200 and the first answer %s", status, again, first)
	}
	if status, body := postWithID(t, p.url, "ids", "other", "msg-1"); status != http.StatusConflict {
		t.Fatalf("other text under msg-1 after restart: %d %s; want 409", status, body)
	}
	all := poll(t, p.url+"/v1/rooms/ids/events?since=0&wait=0")
	if len(all.Events) != 1 || all.Events[0].ID != "msg-1" || all.Events[0].Type != protocol.TypeMessage {
		t.Fatalf("the room holds %+v; want msg-1 once", all.Events)
	}
}
