package server_test

import (
	"bufio"
	"context"
	"encoding/json"
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

// Slow consumers: a subscriber that does not keep up is cut off, and
// resumes from the log without loss.

// bigText is a payload large enough that a few hundred events fill any
// socket buffer between the server and a client that does not read.
var bigText = strings.Repeat("0123456789abcdef", 4096) // 64 KiB

// bigTexts returns n distinct large texts: "<i>:" and the payload.
func bigTexts(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = strconv.Itoa(i+1) + ":" + bigText
	}
	return out
}

// A subscriber that never reads fills its socket buffers and its writer
// blocks; every other subscriber still gets every event while it is stuck.
func TestStuckSubscriberDoesNotDelayOthers(t *testing.T) {
	p := pushdtest.Start(t, server.Config{WriteTimeout: time.Minute})
	head := p.Head(t, pushdtest.RoomPath("lobby"))
	stuck := rawSSE(t, p, "/v1/rooms/lobby/events?since="+head.String())
	p.WaitConnections(t, "sse", 1)

	kinds := []string{pushdtest.WS, pushdtest.WSBatch, pushdtest.SSE, pushdtest.LongPoll}
	subs := make([]*pushdtest.Subscriber, len(kinds))
	for i, kind := range kinds {
		subs[i] = p.Subscribe(t, kind, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{Since: head.String()})
	}
	const n = 100 // 6.25 MiB, over the socket buffers of the stuck one
	want := bigTexts(n)
	var wg sync.WaitGroup
	for i, sub := range subs {
		wg.Go(func() {
			pushdtest.CheckMessages(pushdtest.GoTB{TB: t}, sub.NextN(pushdtest.GoTB{TB: t}, n), head.Epoch, 1, want)
			t.Logf("%s got all %d events", kinds[i], n)
		})
	}
	for _, text := range want {
		p.PublishDirect(t, "lobby", "alice", text)
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// The stuck one was still connected all along, and still is: it has
	// not been dropped, only left behind. Once it reads, it gets
	// everything in order.
	if got, err := p.Connections(t, "sse"); err != nil || got != 2 {
		t.Fatalf("%d SSE connections (%v); want the stuck one and the reader", got, err)
	}
	resp, br := readRawSSE(t, stuck)
	defer resp.Body.Close()
	if f, err := pushdtest.ReadSSEFrame(br); err != nil || f.Retry != "2000" {
		t.Fatalf("first frame %+v, %v", f, err)
	}
	var got []protocol.Event
	for len(got) < n {
		f, err := pushdtest.ReadSSEFrame(br)
		if err != nil {
			t.Fatalf("after %d events: %v", len(got), err)
		}
		if len(f.Comments) > 0 {
			continue
		}
		got = append(got, pushdtest.CheckSSEEvent(t, f))
	}
	pushdtest.CheckMessages(t, got, head.Epoch, 1, want)
}

// A subscriber that reads too slowly and falls more than MaxLag events
// behind is cut off with close code 4008 (WebSocket) or an "event: close"
// frame (SSE), reason slow_consumer; it reconnects from its cursor and
// loses nothing.
func TestSlowConsumerCutOffResumesWithoutLoss(t *testing.T) {
	for _, kind := range []string{pushdtest.WS, pushdtest.SSE} {
		t.Run(kind, func(t *testing.T) {
			p := pushdtest.Start(t, server.Config{MaxLag: 16, WriteTimeout: time.Minute})
			const n = 100
			want := bigTexts(n + 1)
			var got []protocol.Event
			var closed error
			var readFirst, read func() (protocol.Event, error)
			switch kind {
			case pushdtest.WS:
				c := p.DialWS(t, "/v1/rooms/lobby/events", smallBufferClient(t))
				read = func() (protocol.Event, error) {
					ctx, cancel := context.WithTimeout(context.Background(), pushdtest.Timeout)
					defer cancel()
					_, msg, err := c.Read(ctx)
					if err != nil {
						return protocol.Event{}, err
					}
					return pushdtest.CheckEvent(t, msg), nil
				}
				readFirst = read
			case pushdtest.SSE:
				conn := rawSSE(t, p, "/v1/rooms/lobby/events")
				p.WaitConnections(t, "sse", 1)
				var br *bufio.Reader
				read = func() (protocol.Event, error) {
					_ = conn.SetReadDeadline(time.Now().Add(pushdtest.Timeout))
					for {
						f, err := pushdtest.ReadSSEFrame(br)
						if err != nil {
							return protocol.Event{}, err
						}
						switch {
						case f.Event == "close":
							return protocol.Event{}, sseClose{f}
						case len(f.Comments) > 0 || f.Retry != "":
							continue
						}
						return pushdtest.CheckSSEEvent(t, f), nil
					}
				}
				readFirst = func() (protocol.Event, error) {
					_, br = readRawSSE(t, conn)
					return read()
				}
			}
			// One event while the subscriber keeps up: it is live.
			p.PublishDirect(t, "lobby", "alice", want[0])
			ev, err := readFirst()
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, ev)
			// Then a burst it does not read: its writer blocks on the full
			// socket, and the stream runs ahead.
			for _, text := range want[1:n] {
				p.PublishDirect(t, "lobby", "alice", text)
			}
			// Now it reads what reached it, and then the close.
			for {
				ev, err := read()
				if err != nil {
					closed = err
					break
				}
				got = append(got, ev)
			}
			switch kind {
			case pushdtest.WS:
				var ce websocket.CloseError
				if !errors.As(closed, &ce) || ce.Code != protocol.CloseCodeSlowConsumer || !strings.HasPrefix(ce.Reason, protocol.CloseSlowConsumer) {
					t.Fatalf("the slow WebSocket ended with %v; want close %d %s", closed, protocol.CloseCodeSlowConsumer, protocol.CloseSlowConsumer)
				}
			case pushdtest.SSE:
				var sc sseClose
				if !errors.As(closed, &sc) {
					t.Fatalf("the slow SSE stream ended with %v; want an \"event: close\" frame", closed)
				}
				var body struct{ Reason, Message string }
				if err := json.Unmarshal([]byte(sc.f.Data), &body); err != nil || body.Reason != protocol.CloseSlowConsumer || body.Message == "" || sc.f.HasID {
					t.Fatalf("close frame %+v; want no id and data {\"reason\":\"slow_consumer\",\"message\":...}", sc.f)
				}
			}
			if len(got) >= n {
				t.Fatalf("the slow subscriber got all %d events before the cut; the test did not make it slow", len(got))
			}
			t.Logf("cut off after %d of %d events", len(got), n)
			epoch := got[0].Epoch
			pushdtest.CheckMessages(t, got, epoch, 1, want[:len(got)])

			// It resumes from its cursor: exactly the rest, then live ones.
			rest := p.Subscribe(t, kind, pushdtest.RoomPath("lobby"), resumeOpts(kind, got[len(got)-1].Cursor().String()))
			pushdtest.CheckMessages(t, rest.NextN(t, n-len(got)), epoch, uint64(len(got)+1), want[len(got):n])
			p.PublishDirect(t, "lobby", "alice", want[n])
			pushdtest.CheckMessages(t, rest.NextN(t, 1), epoch, n+1, want[n:])
			p.WaitConnections(t, transportOf(kind), 1)
			if m, err := p.Metric(t, "pushd_slow_consumer_drops_total"); err != nil || m != 1 {
				t.Fatalf("pushd_slow_consumer_drops_total %v (%v); want 1", m, err)
			}
		})
	}
}

// sseClose is an "event: close" frame, as an error of the reader.
type sseClose struct{ f pushdtest.SSEFrame }

func (e sseClose) Error() string { return "SSE close: " + e.f.Data }

// With a small WriteTimeout a subscriber that never reads is dropped.
func TestWriteTimeoutDropsStuckSubscriber(t *testing.T) {
	for _, kind := range []string{pushdtest.WS, pushdtest.SSE} {
		t.Run(kind, func(t *testing.T) {
			p := pushdtest.Start(t, server.Config{WriteTimeout: 100 * time.Millisecond, History: 100, TailSize: 8})
			head := p.Head(t, pushdtest.RoomPath("lobby"))
			path := "/v1/rooms/lobby/events?since=" + head.String()
			var ws *websocket.Conn
			if kind == pushdtest.WS {
				ws = p.DialWS(t, path, smallBufferClient(t))
			} else {
				rawSSE(t, p, path)
			}
			p.WaitConnections(t, transportOf(kind), 1)
			published := 0
			testwait.Until(t, pushdtest.Timeout, time.Millisecond, func() error {
				p.PublishDirect(t, "lobby", "alice", bigText)
				published++
				n, err := p.Connections(t, transportOf(kind))
				if err != nil {
					return err
				}
				if n != 0 {
					return fmt.Errorf("the stuck %s subscriber is still connected after %d events", kind, published)
				}
				return nil
			})
			t.Logf("dropped after %d events of %d bytes", published, len(bigText))
			if ws != nil {
				// What it reads now is what reached it, then the end.
				ctx, cancel := context.WithTimeout(context.Background(), pushdtest.Timeout)
				defer cancel()
				var last protocol.Event
				for {
					_, msg, err := ws.Read(ctx)
					if err != nil {
						break
					}
					last = pushdtest.CheckEvent(t, msg)
				}
				if last.Seq >= uint64(published) {
					t.Fatalf("the dropped subscriber got all %d events", published)
				}
			}
		})
	}
}

// A body that does not arrive within the read timeout gets its 408 with
// the error body, with the read and write timeouts alike (as by default):
// the answer has the write timeout after the body's deadline.
func TestSlowBodyGets408WithEqualTimeouts(t *testing.T) {
	const timeout = 300 * time.Millisecond
	s := pushdtest.Start(t, server.Config{ReadTimeout: timeout, WriteTimeout: timeout})
	addr := strings.TrimPrefix(s.URL, "http://")
	for _, path := range []string{"/v1/rooms/lobby/messages", "/v1/tasks"} {
		resp, body := rawAnswer(t, s, fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"user\":", path, addr))
		if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(body, `"code":"timeout"`) {
			t.Fatalf("%s: slow body: %d %s; want 408 timeout", path, resp.StatusCode, body)
		}
	}
}

// waitDrops waits until /metrics counts n slow-consumer drops.
func waitDrops(t *testing.T, p *pushdtest.Server, n float64) {
	t.Helper()
	testwait.Until(t, pushdtest.Timeout, 5*time.Millisecond, func() error {
		got, err := p.Metric(t, "pushd_slow_consumer_drops_total")
		if err != nil {
			return err
		}
		if got != n {
			return fmt.Errorf("pushd_slow_consumer_drops_total %v; want %v", got, n)
		}
		return nil
	})
}

// Every slow-consumer drop is counted, whatever ended it: a socket that
// does not drain within the write timeout (WebSocket and SSE), and a
// WebSocket client that reads nothing, so answers no ping. A client that
// closes its connection is not counted.
func TestEverySlowConsumerDropIsCounted(t *testing.T) {
	for _, kind := range []string{pushdtest.WS, pushdtest.SSE} {
		t.Run("socket full "+kind, func(t *testing.T) {
			p := pushdtest.Start(t, server.Config{WriteTimeout: 100 * time.Millisecond, History: 100, TailSize: 8})
			if kind == pushdtest.WS {
				p.DialWS(t, pushdtest.RoomPath("lobby"), smallBufferClient(t))
			} else {
				rawSSE(t, p, pushdtest.RoomPath("lobby"))
			}
			p.WaitConnections(t, transportOf(kind), 1)
			testwait.Until(t, pushdtest.Timeout, time.Millisecond, func() error {
				p.PublishDirect(t, "lobby", "alice", bigText)
				if n, err := p.Connections(t, transportOf(kind)); err != nil || n != 0 {
					return fmt.Errorf("the stuck subscriber is still connected (%d, %v)", n, err)
				}
				return nil
			})
			waitDrops(t, p, 1)
		})
	}
	t.Run("no pong", func(t *testing.T) {
		p := pushdtest.Start(t, server.Config{Heartbeat: 50 * time.Millisecond, WriteTimeout: 100 * time.Millisecond})
		p.DialWS(t, pushdtest.RoomPath("lobby"), nil) // never read: no pong goes back
		p.WaitConnections(t, "ws", 1)
		p.WaitConnections(t, "ws", 0)
		waitDrops(t, p, 1)
	})
	t.Run("closed by the client", func(t *testing.T) {
		p := pushdtest.Start(t, server.Config{Heartbeat: 50 * time.Millisecond, WriteTimeout: time.Second})
		ws := p.Subscribe(t, pushdtest.WS, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{})
		sse := p.Subscribe(t, pushdtest.SSE, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{})
		ws.Close()
		sse.Close()
		p.WaitConnections(t, "ws", 0)
		p.WaitConnections(t, "sse", 0)
		p.Publish(t, "lobby", "alice", "after they left")
		waitDrops(t, p, 0)
	})
}
