package server_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

func TestPublishRateLimit(t *testing.T) {
	s := pushdtest.Start(t, server.Config{Limits: server.Limits{PublishRate: 1, PublishBurst: 3}})
	post := func(user string) *http.Response {
		resp, err := http.Post(s.URL+"/v1/rooms/lobby/messages", "application/json", strings.NewReader(`{"user":"`+user+`","text":"hi"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for i := range 3 {
		if resp := post("alice"); resp.StatusCode != http.StatusCreated {
			t.Fatalf("post %d within the burst: %d", i, resp.StatusCode)
		}
	}
	resp := post("alice")
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("post over the burst: %d; want 429", resp.StatusCode)
	}
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || secs < 1 {
		t.Fatalf("Retry-After = %q; want whole seconds", resp.Header.Get("Retry-After"))
	}
	if status, code := call(t, s, "POST", "/v1/rooms/lobby/messages", "", `{"user":"alice","text":"hi"}`); status != 429 || code != protocol.CodeRateLimited {
		t.Fatalf("post over the burst: %d %s; want 429 %s", status, code, protocol.CodeRateLimited)
	}
	if resp := post("bob"); resp.StatusCode != http.StatusCreated {
		t.Fatalf("another user's post: %d; the limit is per user", resp.StatusCode)
	}
	status, code := call(t, s, "GET", "/v1/rooms/lobby/events?since=0&wait=0", "", "")
	if status != 200 || code != "" {
		t.Fatalf("poll: %d %s", status, code)
	}
}

// Posts sent at the same moment share the user's burst, not each get the
// whole of it: the limit holds under concurrency.
func TestPublishRateLimitConcurrent(t *testing.T) {
	const burst, posts = 5, 40
	s := pushdtest.Start(t, server.Config{Limits: server.Limits{PublishRate: 0.01, PublishBurst: burst}})
	statuses := make(chan int, posts)
	var wg sync.WaitGroup
	for range posts {
		wg.Go(func() {
			status, _ := call(t, s, "POST", "/v1/rooms/lobby/messages", "", `{"user":"alice","text":"hi"}`)
			statuses <- status
		})
	}
	wg.Wait()
	close(statuses)
	counts := map[int]int{}
	for status := range statuses {
		counts[status]++
	}
	if counts[http.StatusCreated] != burst || counts[http.StatusTooManyRequests] != posts-burst {
		t.Fatalf("%d concurrent posts with a burst of %d: %v; want %d created and the rest 429", posts, burst, counts, burst)
	}
}

func TestConnectionLimits(t *testing.T) {
	s := pushdtest.Start(t, server.Config{Limits: server.Limits{ConnsPerIP: 3, ConnsPerUser: 2}})
	ws := s.WS
	ctx := t.Context()
	dial := func(user string) (*websocket.Conn, int) {
		c, resp, err := websocket.Dial(ctx, ws+"/v1/rooms/lobby/events?user="+user, nil)
		if err != nil {
			if resp == nil {
				t.Fatal(err)
			}
			return nil, resp.StatusCode
		}
		t.Cleanup(func() { c.CloseNow() })
		return c, http.StatusSwitchingProtocols
	}
	if _, st := dial("alice"); st != 101 {
		t.Fatalf("first of alice: %d", st)
	}
	a2, st := dial("alice")
	if st != 101 {
		t.Fatalf("second of alice: %d", st)
	}
	if _, st := dial("alice"); st != http.StatusTooManyRequests {
		t.Fatalf("third of alice: %d; want 429 (2 per user)", st)
	}
	if _, st := dial("bob"); st != 101 {
		t.Fatalf("bob: %d", st)
	}
	if _, st := dial("carol"); st != http.StatusTooManyRequests {
		t.Fatalf("a fourth from one address: %d; want 429 (3 per address)", st)
	}
	// Closing one frees its place.
	a2.Close(websocket.StatusNormalClosure, "")
	testwait.Until(t, 5*time.Second, 10*time.Millisecond, func() error {
		c, _, err := websocket.Dial(ctx, ws+"/v1/rooms/lobby/events?user=carol", nil)
		if err != nil {
			return err
		}
		t.Cleanup(func() { c.CloseNow() })
		return nil
	})
	status, code := call(t, s, "GET", "/v1/rooms/lobby/presence", "", "")
	if status != 200 || code != "" {
		t.Fatalf("presence: %d %s", status, code)
	}
}

func TestLongPollAndRoomLimits(t *testing.T) {
	s := pushdtest.Start(t, server.Config{LongPollWait: 5 * time.Second, Limits: server.Limits{LongPollsPerIP: 2, MaxStreams: 3}})
	// Two long polls wait; a third from the same address is refused.
	var polls []<-chan pushdtest.Polled
	for _, room := range []string{"a", "b"} {
		polls = append(polls, s.PollAsync(t, pushdtest.RoomPath(room), "wait=5s"))
	}
	s.WaitConnections(t, "longpoll", 2)
	if status, code := call(t, s, "GET", "/v1/rooms/a/events?wait=5s", "", ""); status != 429 || code != protocol.CodeRateLimited {
		t.Fatalf("a third long poll: %d %s; want 429 %s", status, code, protocol.CodeRateLimited)
	}
	// Rooms a and b are in use; a third may be made, and once it is idle
	// a fourth takes its place: the limit counts rooms in use.
	if status, _ := call(t, s, "POST", "/v1/rooms/c/messages", "", `{"user":"u","text":"hi"}`); status != 201 {
		t.Fatalf("publish to a third room: %d", status)
	}
	if status, _ := call(t, s, "POST", "/v1/rooms/d/messages", "", `{"user":"u","text":"hi"}`); status != 201 {
		t.Fatalf("publish to a fourth room while the third is idle: %d; want 201", status)
	}
	// With a subscriber in c as well, three rooms are in use and a new
	// one is refused.
	s.Subscribe(t, pushdtest.SSE, pushdtest.RoomPath("c"), pushdtest.SubOptions{})
	if status, code := call(t, s, "POST", "/v1/rooms/e/messages", "", `{"user":"u","text":"hi"}`); status != 503 || code != protocol.CodeUnavailable {
		t.Fatalf("publish to a new room with three in use: %d %s; want 503 %s", status, code, protocol.CodeUnavailable)
	}
	if status, _ := call(t, s, "POST", "/v1/rooms/c/messages", "", `{"user":"u","text":"again"}`); status != 201 {
		t.Fatalf("publish to a room in use at the limit: %d", status)
	}
	// Release the long polls.
	for _, room := range []string{"a", "b"} {
		call(t, s, "POST", "/v1/rooms/"+room+"/messages", "", `{"user":"u","text":"wake"}`)
	}
	for _, polled := range polls {
		testwait.Recv(t, pushdtest.Timeout, polled, "answer of a long poll")
	}
}

func TestSlowBodyAndLargeClientMessage(t *testing.T) {
	s := pushdtest.Start(t, server.Config{ReadTimeout: 200 * time.Millisecond, Limits: server.Limits{WSReadLimit: 1024}})

	// A body that does not arrive in time: 408 with the error body.
	resp, body := rawAnswer(t, s, "POST /v1/rooms/lobby/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"user\":")
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(body, `"code":"timeout"`) {
		t.Fatalf("slow body: %d %s; want 408 timeout", resp.StatusCode, body)
	}

	// A WebSocket message over the read limit closes that connection with 1009.
	ctx := t.Context()
	c, _, err := websocket.Dial(ctx, s.WS+"/v1/rooms/lobby/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte(strings.Repeat("x", 2048))); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, _, err = c.Read(rctx)
	if code := websocket.CloseStatus(err); code != websocket.StatusMessageTooBig {
		t.Fatalf("after a 2 KiB message with a 1 KiB limit: %v; want close 1009", err)
	}
}

// A subscription refused by a limit creates no room, so refusals cannot
// use up the room limit; and a publish refused after its rate check costs
// no token.
func TestRefusedRequestsCreateNothing(t *testing.T) {
	s := pushdtest.Start(t, server.Config{Limits: server.Limits{ConnsPerIP: 1, MaxStreams: 2, PublishRate: 1, PublishBurst: 1}})
	// One SSE subscription uses the address's only place.
	s.Subscribe(t, pushdtest.SSE, pushdtest.RoomPath("one"), pushdtest.SubOptions{})
	for i := range 5 {
		if a := s.Get(t, fmt.Sprintf("/v1/rooms/refused%d/events", i), "Accept", "text/event-stream"); a.Status != http.StatusTooManyRequests {
			t.Fatalf("a second subscription: %d; want 429", a.Status)
		}
	}
	// The refusals made no rooms: a second room can still be made.
	if status, _ := call(t, s, "POST", "/v1/rooms/two/messages", "", `{"user":"u","text":"hi"}`); status != 201 {
		t.Fatalf("publish to a second room: %d; want 201 (refused subscriptions must not use up the room limit)", status)
	}
	// With both rooms in use (a long poll waits in room two), the room
	// limit refuses a third room with 503; that refusal costs no token,
	// so the user may still post at once.
	polling := s.PollAsync(t, pushdtest.RoomPath("two"), "wait=30s")
	s.WaitConnections(t, "longpoll", 1)
	if status, code := call(t, s, "POST", "/v1/rooms/three/messages", "", `{"user":"v","text":"hi"}`); status != 503 || code != protocol.CodeUnavailable {
		t.Fatalf("publish to a third room: %d %s; want 503", status, code)
	}
	if status, _ := call(t, s, "POST", "/v1/rooms/two/messages", "", `{"user":"v","text":"hi"}`); status != 201 {
		t.Fatalf("publish after a refused one: %d; want 201 (the refusal cost no token)", status)
	}
	testwait.Recv(t, pushdtest.Timeout, polling, "answer of the long poll in room two") // the publish wakes it
}

// tooManySubs fails the test unless a subscription of kind to path was
// refused with 429 rate_limited.
func tooManySubs(t *testing.T, r *pushdtest.Remote, kind, path string, o pushdtest.SubOptions) {
	t.Helper()
	sub, err := r.TrySubscribe(kind, path, o)
	if err == nil {
		sub.Close()
		t.Fatalf("%s %s %+v was let in; want 429", kind, path, o)
	}
	var re *pushdtest.RefusedError
	if !errors.As(err, &re) || re.Status != http.StatusTooManyRequests {
		t.Fatalf("%s %s %+v: %v; want 429", kind, path, o, err)
	}
}

// The per-user limit counts every live subscription of a token's user,
// whether or not the query names the user, on every stream (rooms, the
// tasks stream, one task) and every transport (a waiting long poll too),
// and from any address: behind a proxy, where the per-address limit is
// lifted, it still holds.
func TestConnsPerUserCountsEverySubscriptionOfAToken(t *testing.T) {
	const perUser = 4
	s := authServer(t, server.Config{LongPollWait: 5 * time.Second,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Limits:         server.Limits{ConnsPerUser: perUser}})
	tok := mint(t, "ann", server.Claims{Rooms: []string{"*"}, Publish: true, Tasks: true})
	// Each of ann's clients from an address of its own.
	ann := func(i int) *pushdtest.Remote {
		return s.WithHeader("Authorization", "Bearer "+tok, "X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i))
	}
	task := ann(0).StartTask(t, `{"kind":"external","name":"watched"}`)

	ann(1).Subscribe(t, pushdtest.SSE, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{})
	ann(2).Subscribe(t, pushdtest.WS, pushdtest.RoomPath("dev"), pushdtest.SubOptions{})
	tasksSub := ann(3).Subscribe(t, pushdtest.SSE, pushdtest.TasksPath, pushdtest.SubOptions{})
	poll := ann(4).PollAsync(t, pushdtest.RoomPath("lobby"), "wait=5s")
	s.WaitConnections(t, "longpoll", 1)

	tooManySubs(t, ann(5), pushdtest.WS, pushdtest.TasksPath, pushdtest.SubOptions{})
	tooManySubs(t, ann(6), pushdtest.SSE, pushdtest.TaskPath(task.ID), pushdtest.SubOptions{})
	tooManySubs(t, ann(7), pushdtest.WS, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{User: "ann"})
	a := ann(8).Get(t, pushdtest.RoomPath("lobby")+"?wait=5s")
	a.WantError(t, http.StatusTooManyRequests, protocol.CodeRateLimited)
	if a.Header.Get("Retry-After") == "" {
		t.Fatalf("429 without Retry-After: %v", a.Header)
	}

	// Another user has places of their own.
	bob := s.WithHeader("Authorization", "Bearer "+mint(t, "bob", server.Claims{Rooms: []string{"*"}}))
	bob.Subscribe(t, pushdtest.WS, pushdtest.TasksPath, pushdtest.SubOptions{})

	// An ended subscription frees its place, and so does an answered long poll.
	tasksSub.Close()
	testwait.Until(t, pushdtest.Timeout, 10*time.Millisecond, func() error {
		sub, err := ann(9).TrySubscribe(pushdtest.WS, pushdtest.TasksPath, pushdtest.SubOptions{})
		if err != nil {
			return err
		}
		t.Cleanup(sub.Close)
		return nil
	})
	ann(0).Publish(t, "lobby", "ann", "wakes the long poll")
	testwait.Recv(t, pushdtest.Timeout, poll, "the long poll's answer")
	ann(10).Subscribe(t, pushdtest.SSE, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{})
}

// On a server without tokens the per-user limit counts the name the
// query claims, as well as the address.
func TestConnsPerUserCountsTheClaimedNameOnAnOpenServer(t *testing.T) {
	s := pushdtest.Start(t, server.Config{Limits: server.Limits{ConnsPerUser: 2, ConnsPerIP: 4}})
	s.Subscribe(t, pushdtest.SSE, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{User: "ann"})
	s.Subscribe(t, pushdtest.WS, pushdtest.RoomPath("dev"), pushdtest.SubOptions{User: "ann"})
	tooManySubs(t, s.Remote, pushdtest.SSE, pushdtest.RoomPath("ops"), pushdtest.SubOptions{User: "ann"})
	s.Get(t, pushdtest.RoomPath("ops")+"?user=ann&wait=0").WantError(t, http.StatusTooManyRequests, protocol.CodeRateLimited)
	// Without a name only the address counts.
	s.Subscribe(t, pushdtest.SSE, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{})
	s.Subscribe(t, pushdtest.WS, pushdtest.TasksPath, pushdtest.SubOptions{})
	tooManySubs(t, s.Remote, pushdtest.SSE, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{User: "bob"})
}
