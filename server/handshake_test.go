package server_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// A WebSocket upgrade that cannot be accepted (no Sec-WebSocket-Key, a
// version other than 13, a bad key) gets the JSON error body like every
// other refusal, and changes nothing: no login for its ?user=.
func TestRefusedWebSocketHandshakeChangesNothing(t *testing.T) {
	p := startPushd(t, server.Config{})
	p.publish(t, "lobby", "alice", "before")
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
			before := p.head(t, "lobby")
			status, hdr, body := p.do(t, "GET", "/v1/rooms/lobby/events?user="+tc.user, "", "", append(append([]string{}, base...), tc.header...)...)
			if status < 400 || status >= 500 {
				t.Fatalf("refused handshake answered %d %s; want a 4xx", status, body)
			}
			after := p.head(t, "lobby")
			present := p.presence(t, "lobby")
			if after != before || slices.Contains(present, tc.user) {
				t.Errorf("a refused handshake moved the stream from %s to %s (%s) and left %q present; it must change nothing",
					before, after, summary(p.history(t, "lobby")[before.Seq:]), present)
			}
			var e protocol.ErrorBody
			if hdr.Get("Content-Type") != "application/json" || json.Unmarshal(body, &e) != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Errorf("refused handshake answered %d with Content-Type %q and body %q; want the JSON error body", status, hdr.Get("Content-Type"), body)
			}
		})
	}
}
