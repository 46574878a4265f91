package server_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testlog"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// trustLoopback makes the test's own requests come from a trusted proxy.
func trustLoopback(t *testing.T) []netip.Prefix {
	t.Helper()
	p, err := server.ParseTrustedProxies([]string{"127.0.0.0/8", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseTrustedProxies(t *testing.T) {
	got, err := server.ParseTrustedProxies([]string{"10.1.2.3/8", " 192.0.2.7 ", "2001:db8::/32", "::ffff:127.0.0.1", ""})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32", "127.0.0.1/32"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("parsed %v; want %v", got, want)
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0"} {
		if _, err := server.ParseTrustedProxies([]string{bad}); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("%q: err %v; want one naming it", bad, err)
		}
	}
}

// A WebSocket handshake that a proxy stripped of its Upgrade header gets a
// 400 that says what to fix, not a long poll's 200 after the wait.
func TestWebSocketWithoutUpgradeIsRefusedWithTheProxyFix(t *testing.T) {
	srv := pushdtest.Start(t, server.Config{LongPollWait: pushdtest.Timeout})
	for _, header := range [][]string{
		{"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version", "13"},
		{"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version", "13", "Connection", "keep-alive"},
	} {
		a := srv.Get(t, pushdtest.RoomPath("lobby")+"?since=0", header...)
		if a.Status != http.StatusBadRequest {
			t.Fatalf("handshake without Upgrade (%v): %d %s; want 400", header, a.Status, a.Body)
		}
		msg := a.Error(t).Message
		for _, want := range []string{"Upgrade", "proxy", "proxy_http_version 1.1", "Deploying"} {
			if !strings.Contains(msg, want) {
				t.Errorf("message %q does not mention %q", msg, want)
			}
		}
	}
	// An HTTP/1.0 request, as nginx sends by default, is told the same.
	resp, _ := rawAnswer(t, srv, "GET "+pushdtest.RoomPath("lobby")+" HTTP/1.0\r\nHost: 127.0.0.1\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("HTTP/1.0 handshake: %d; want 400", resp.StatusCode)
	}
}

// From a trusted proxy, the per-address limits count the address the
// proxy forwards; from anyone else the forwarding headers are ignored.
func TestTrustedProxiesLimitByTheForwardedAddress(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix
		header  func(client string) []string
		perIP   bool // the limit counts each forwarded client apart
	}{
		{"x-forwarded-for", trustLoopback(t), func(c string) []string { return []string{"X-Forwarded-For", c + ", 127.0.0.1"} }, true},
		{"forwarded", trustLoopback(t), func(c string) []string {
			return []string{"Forwarded", `for="` + net.JoinHostPort(c, "4711") + `";proto=https, for=127.0.0.1`}
		}, true},
		{"untrusted", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, func(c string) []string { return []string{"X-Forwarded-For", c} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := pushdtest.Start(t, server.Config{TrustedProxies: tc.trusted, Limits: server.Limits{ConnsPerIP: 1}})
			srv.DialSSE(t, pushdtest.RoomPath("lobby"), tc.header("203.0.113.1")...)
			other := srvSSE(t, srv, tc.header("2001:db8::2"))
			same := srvSSE(t, srv, tc.header("203.0.113.1"))
			if same != http.StatusTooManyRequests {
				t.Errorf("a second stream from the same client: %d; want 429", same)
			}
			want := http.StatusOK
			if !tc.perIP {
				want = http.StatusTooManyRequests
			}
			if other != want {
				t.Errorf("a stream from another forwarded client: %d; want %d", other, want)
			}
		})
	}
}

// srvSSE opens an event stream with header and returns its status; a
// stream that opened is closed when the test ends.
func srvSSE(t *testing.T, srv *pushdtest.Server, header []string) int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+pushdtest.RoomPath("lobby"), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := srv.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp.StatusCode
}

// Behind a trusted proxy, the server's own origin is the one the proxy
// forwards (X-Forwarded-Host and -Proto, or Forwarded): a page served
// through the proxy may use the API, wherever pushd itself listens.
func TestOriginBehindATrustedProxy(t *testing.T) {
	var logs testlog.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	trusted := pushdtest.Start(t, server.Config{TrustedProxies: trustLoopback(t), AllowedHosts: []string{"chat.example.com"}, Logger: log})
	untrusted := pushdtest.Start(t, server.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	xfwd := func(host, proto string) []string {
		return []string{"X-Forwarded-Host", host, "X-Forwarded-Proto", proto}
	}
	for _, tc := range []struct {
		srv    *pushdtest.Server
		origin string
		header []string
		status int
	}{
		{trusted, "https://chat.example.com:8443", xfwd("chat.example.com:8443", "https"), 200},
		{trusted, "https://chat.example.com", xfwd("chat.example.com", "https"), 200},
		{trusted, "https://chat.example.com", xfwd("chat.example.com:443", "https"), 200},
		{trusted, "https://chat.example.com:8443", []string{"Forwarded", `for=192.0.2.1;host="chat.example.com:8443";proto=https`}, 200},
		{trusted, "http://chat.example.com:8443", xfwd("chat.example.com:8443", "https"), 403},
		{trusted, "https://chat.example.com", xfwd("chat.example.com:8443", "https"), 403},
		{trusted, "https://evil.example.net", xfwd("chat.example.com", "https"), 403},
		{untrusted, "https://chat.example.com:8443", xfwd("chat.example.com:8443", "https"), 403},
	} {
		a := tc.srv.Get(t, "/v1/rooms/lobby/presence", append([]string{"Origin", tc.origin}, tc.header...)...)
		if a.Status != tc.status {
			t.Errorf("Origin %s with %v: %d %s; want %d", tc.origin, tc.header, a.Status, a.Body, tc.status)
		}
		// Allowed or refused, the page may read the answer and Retry-After.
		if got := a.Header.Get("Access-Control-Allow-Origin"); got != tc.origin {
			t.Errorf("Origin %s: Access-Control-Allow-Origin %q; want the origin", tc.origin, got)
		}
		if got := a.Header.Get("Access-Control-Expose-Headers"); !strings.Contains(got, "Retry-After") {
			t.Errorf("Origin %s: Access-Control-Expose-Headers %q; want Retry-After in it", tc.origin, got)
		}
		if tc.status == http.StatusForbidden && !strings.Contains(a.Error(t).Message, "--allow-origin") {
			t.Errorf("refusal %s does not say how to allow the page", a.Body)
		}
	}
	// A refusal is logged at debug level with what the server took for
	// its own origin.
	if got := logs.String(); !strings.Contains(got, "refused a page of another origin") || !strings.Contains(got, "own=https://chat.example.com:8443") {
		t.Errorf("debug log does not record the refusal and the server's own origin:\n%s", got)
	}
}

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
