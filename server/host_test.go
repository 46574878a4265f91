package server_test

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// A page whose name is made to resolve to 127.0.0.1 (DNS rebinding) sends
// its own name as Host, and as Origin: the origin check takes it for the
// server's own page, the host check does not. Nothing it asks is done:
// no publish, no read, no WebSocket, no task.
func TestHostCheckStopsDNSRebinding(t *testing.T) {
	s := pushdtest.Start(t, server.Config{})
	port := portOf(t, s.URL)
	page := "http://rebind.example:" + port
	evil := s.WithHeader("Host", "rebind.example:"+port, "Origin", page)
	head := s.Head(t, pushdtest.RoomPath("lobby"))

	for _, a := range []pushdtest.Answer{
		evil.Post(t, "/v1/rooms/lobby/messages", `{"user":"mallory","text":"hi"}`),
		evil.Get(t, pushdtest.RoomPath("lobby")+"?since=0&wait=0"),
		evil.Get(t, pushdtest.RoomPath("lobby")+"?user=mallory&wait=0"),
		evil.Get(t, "/v1/rooms/lobby/presence"),
		evil.Post(t, "/v1/tasks", `{"kind":"demo","total":3}`),
		evil.Get(t, "/metrics"),
	} {
		e := a.WantError(t, http.StatusMisdirectedRequest, protocol.CodeMisdirected)
		if !strings.Contains(e.Message, "--allowed-hosts") || !strings.Contains(e.Message, "rebind.example") {
			t.Errorf("refusal %q does not name the host and the flag", e.Message)
		}
	}
	_, err := evil.TrySubscribe(pushdtest.WS, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{User: "mallory"})
	var re *pushdtest.RefusedError
	if !errors.As(err, &re) || re.Status != http.StatusMisdirectedRequest {
		t.Fatalf("a WebSocket from the rebound page: %v; want 421", err)
	}
	if got := s.Head(t, pushdtest.RoomPath("lobby")); got != head {
		t.Fatalf("the refused requests moved the room from %s to %s", head, got)
	}
	if tasks := s.Tasks(t); len(tasks) != 0 {
		t.Fatalf("a refused start made %d tasks", len(tasks))
	}

	// The names of loopback, and addresses, are the server's own.
	for _, host := range []string{"localhost:" + port, "LOCALHOST", "127.0.0.1:" + port, "[::1]:" + port, "[::1]", "192.0.2.7:80"} {
		s.WithHeader("Host", host).Expect(t, http.MethodGet, "/v1/rooms/lobby/presence", "", http.StatusOK, nil)
	}
}

// --allowed-hosts names the hosts a server answers to besides localhost
// and addresses (patterns too); behind a trusted proxy the host checked
// is the one the proxy forwards.
func TestAllowedHosts(t *testing.T) {
	s := pushdtest.Start(t, server.Config{AllowedHosts: []string{"chat.example.com", "*.pushd.example", "ops.example.com:8443"},
		TrustedProxies: trustLoopback(t)})
	for host, want := range map[string]int{
		"chat.example.com": 200, "Chat.Example.com.:8080": 200, "eu.pushd.example": 200, "ops.example.com:8443": 200,
		"ops.example.com": 421, "pushd.example": 421, "chat.example.com.evil.example": 421, "evil.example": 421,
	} {
		if a := s.WithHeader("Host", host).Get(t, "/v1/rooms/lobby/presence"); a.Status != want {
			t.Errorf("Host %s: %d %s; want %d", host, a.Status, a.Body, want)
		}
	}
	// From a trusted proxy: the forwarded host, whatever the Host header.
	for _, c := range []struct {
		header []string
		want   int
	}{
		{[]string{"X-Forwarded-Host", "chat.example.com"}, 200},
		{[]string{"Host", "chat.example.com", "X-Forwarded-Host", "rebind.example"}, 421},
		{[]string{"Host", "upstream-name", "X-Forwarded-Host", "eu.pushd.example"}, 200},
		{[]string{"Forwarded", `for=192.0.2.1;host="rebind.example"`}, 421},
	} {
		if a := s.WithHeader(c.header...).Get(t, "/v1/rooms/lobby/presence"); a.Status != c.want {
			t.Errorf("%v: %d %s; want %d", c.header, a.Status, a.Body, c.want)
		}
	}
	// From anyone else the forwarding headers are ignored.
	untrusted := pushdtest.Start(t, server.Config{AllowedHosts: []string{"chat.example.com"}})
	untrusted.WithHeader("Host", "rebind.example", "X-Forwarded-Host", "chat.example.com").
		Get(t, "/v1/rooms/lobby/presence").WantError(t, http.StatusMisdirectedRequest, protocol.CodeMisdirected)
}

// portOf returns the port of a server's URL.
func portOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Port()
}
