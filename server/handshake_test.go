package server_test

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// A WebSocket upgrade that cannot be accepted (no Sec-WebSocket-Key, a
// version other than 13, a bad key) gets the JSON error body like every
// other refusal, and changes nothing: no login for its ?user=.
func TestRefusedWebSocketHandshakeChangesNothing(t *testing.T) {
	p := pushdtest.Start(t, server.Config{})
	p.Publish(t, "lobby", "alice", "before")
	base := []string{"Connection", "Upgrade", "Upgrade", "websocket"}
	for _, tc := range []struct {
		name, user string
		header     []string
	}{
		{"no key", "mallory1", []string{"Sec-WebSocket-Version", "13"}},
		{"version 8", "mallory2", []string{"Sec-WebSocket-Version", "8", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}},
		{"short key", "mallory3", []string{"Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "c2hvcnQ="}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := p.Head(t, pushdtest.RoomPath("lobby"))
			a := p.Request(t, t.Context(), "GET", "/v1/rooms/lobby/events?user="+tc.user, "", append(append([]string{}, base...), tc.header...)...)
			status, hdr, body := a.Status, a.Header, a.Body
			if status < 400 || status >= 500 {
				t.Fatalf("refused handshake answered %d %s; want a 4xx", status, body)
			}
			after := p.Head(t, pushdtest.RoomPath("lobby"))
			present := p.Presence(t, "lobby")
			if after != before || slices.Contains(present, tc.user) {
				t.Errorf("a refused handshake moved the stream from %s to %s (%s) and left %q present; it must change nothing",
					before, after, pushdtest.Summary(p.History(t, pushdtest.RoomPath("lobby"))[before.Seq:]), present)
			}
			var e protocol.ErrorBody
			if hdr.Get("Content-Type") != "application/json" || json.Unmarshal(body, &e) != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Errorf("refused handshake answered %d with Content-Type %q and body %q; want the JSON error body", status, hdr.Get("Content-Type"), body)
			}
		})
	}
}

// A WebSocket upgrade over HTTP/1.0 or with two keys is refused with the
// error body, and its ?user= never logs in.
func TestWebSocketHandshakeRefusalsChangeNothing(t *testing.T) {
	s := pushdtest.Start(t, server.Config{})
	addr := strings.TrimPrefix(s.URL, "http://")
	for name, req := range map[string]string{
		"http/1.0": "GET /v1/rooms/hs/events?user=alice HTTP/1.0\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
		"two keys": "GET /v1/rooms/hs/events?user=bob HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = c.Write([]byte(req))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %s; want 400 with the JSON error body", name, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	if status, _ := call(t, s, "GET", "/v1/rooms/hs/events?since=0&wait=0", "", ""); status != 200 {
		t.Fatalf("poll: %d", status)
	}
	if evs := s.History(t, "/v1/rooms/hs/events"); len(evs) != 0 {
		t.Fatalf("the refused upgrades left %d events (logins?) in the room", len(evs))
	}
}
