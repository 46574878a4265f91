package server_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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

// The transports: how each delivers events, keeps an idle connection
// alive, and ends, on shutdown with word to reconnect.

// messageTexts are texts that must reach subscribers unchanged: HTML
// characters are not escaped, non-ASCII and JSON specials survive, and line
// breaks and tabs stay (SSE's data line carries the newline escaped by
// JSON, so the frame stays one line).
var messageTexts = []string{"hi", "<b>&amp;</b>", `quote " backslash \ tab` + "\t", "first line\nsecond line\n\tindented\n\nafter a blank line", "üñí©ødé ✓ 😀", strings.Repeat("x", 4096)}

// Every transport delivers published events in order, each with exactly
// the fields of its type, starting at the live end without since; a
// backwards read then returns the texts as they were sent.
func TestTransportsDeliverEventsInOrder(t *testing.T) {
	for _, kind := range append(pushdtest.Transports, pushdtest.ShortPoll) {
		t.Run(kind, func(t *testing.T) {
			p := pushdtest.Start(t, server.Config{})
			p.Publish(t, "lobby", "early", "before anyone listened")
			o := pushdtest.SubOptions{User: "watcher"}
			if kind == pushdtest.LongPoll || kind == pushdtest.ShortPoll {
				// A poll must name where it continues from; the live end
				// is where the server says "now" is.
				o.Since = p.Head(t, pushdtest.RoomPath("lobby")).String()
			}
			sub := p.Subscribe(t, kind, pushdtest.RoomPath("lobby"), o)
			// Polls join the room when they are made; wait for the login of
			// WebSocket and SSE watchers, which exists once they are open.
			var want []protocol.Event
			if kind != pushdtest.LongPoll && kind != pushdtest.ShortPoll {
				login := sub.Next(t)
				if login.Type != protocol.TypeLogin || login.User != "watcher" || login.Seq != 2 || login.Stream != "room/lobby" {
					t.Fatalf("first event %s; want watcher's login at seq 2", pushdtest.OneLine(login))
				}
			}
			for i, text := range messageTexts {
				want = append(want, p.Publish(t, "lobby", "user"+strconv.Itoa(i), text))
			}
			got := make([]protocol.Event, 0, len(want))
			for len(got) < len(want) {
				ev := sub.Next(t)
				if ev.Type == protocol.TypeLogin && ev.User == "watcher" && (kind == pushdtest.LongPoll || kind == pushdtest.ShortPoll) {
					continue // a poll's own login lands wherever its first request did
				}
				got = append(got, ev)
			}
			for i := range want {
				if !got[i].Time.Equal(want[i].Time) || got[i].Seq != want[i].Seq || got[i].Epoch != want[i].Epoch ||
					got[i].User != want[i].User || got[i].Text != want[i].Text || got[i].Stream != "room/lobby" {
					t.Fatalf("event %d: got %s at %v; want %s at %v", i, pushdtest.OneLine(got[i]), got[i].Time, pushdtest.OneLine(want[i]), want[i].Time)
				}
				if i > 0 && got[i].Seq <= got[i-1].Seq {
					t.Fatalf("seq %d after %d", got[i].Seq, got[i-1].Seq)
				}
			}
			var page protocol.Page
			p.Expect(t, http.MethodGet, pushdtest.RoomPath("lobby")+"?before=100", "", http.StatusOK, &page)
			stored := map[uint64]string{}
			for _, ev := range page.Events {
				stored[ev.Seq] = ev.Text
			}
			for i, ev := range want {
				if stored[ev.Seq] != messageTexts[i] {
					t.Errorf("backwards read at seq %d: %q; want %q", ev.Seq, stored[ev.Seq], messageTexts[i])
				}
			}
		})
	}
}

// Many publishers and many subscribers on all transports at once: every
// subscriber gets every event exactly once, in seq order, and each
// publisher's events in the order it published them. (Run with -race; the
// package's TestMain checks that no goroutine outlives the test.)
func TestConcurrentPublishersAndSubscribers(t *testing.T) {
	const (
		publishers = 8
		perPub     = 40
		total      = publishers * perPub
	)
	p := pushdtest.Start(t, server.Config{})
	head := p.Head(t, pushdtest.RoomPath("busy"))
	kinds := []string{pushdtest.WS, pushdtest.WSBatch, pushdtest.SSE, pushdtest.LongPoll}
	var subs []*pushdtest.Subscriber
	var names []string
	for i := range 30 {
		kind := kinds[i%len(kinds)]
		subs = append(subs, p.Subscribe(t, kind, pushdtest.RoomPath("busy"), pushdtest.SubOptions{Since: head.String()}))
		names = append(names, kind+"#"+strconv.Itoa(i))
	}

	var wg sync.WaitGroup
	results := make([][]protocol.Event, len(subs))
	for i, sub := range subs {
		wg.Go(func() {
			results[i] = sub.NextN(pushdtest.GoTB{TB: t}, total)
		})
	}
	stored := make([][]protocol.Event, publishers)
	for pub := range publishers {
		wg.Go(func() {
			for j := range perPub {
				stored[pub] = append(stored[pub], p.Publish(pushdtest.GoTB{TB: t}, "busy", "pub"+strconv.Itoa(pub), fmt.Sprintf("%d-%d", pub, j)))
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	// The publishers' answers: distinct seqs covering head+1..head+total,
	// rising within each publisher.
	bySeq := make(map[uint64]string, total)
	for pub, evs := range stored {
		for j, ev := range evs {
			if prev, dup := bySeq[ev.Seq]; dup {
				t.Fatalf("seq %d was answered to two publishes: %s and %s", ev.Seq, prev, ev.Text)
			}
			bySeq[ev.Seq] = ev.Text
			if j > 0 && ev.Seq <= evs[j-1].Seq {
				t.Fatalf("publisher %d: seq %d after %d", pub, ev.Seq, evs[j-1].Seq)
			}
		}
	}
	for seq := head.Seq + 1; seq <= head.Seq+total; seq++ {
		if _, ok := bySeq[seq]; !ok {
			t.Fatalf("no publish was answered with seq %d", seq)
		}
	}

	// Every subscriber: exactly those events, in seq order.
	for i, evs := range results {
		next := make([]int, publishers)
		for k, ev := range evs {
			want := head.Seq + uint64(k) + 1
			if ev.Type != protocol.TypeMessage || ev.Epoch != head.Epoch || ev.Seq != want || ev.Text != bySeq[want] {
				t.Fatalf("%s: event %d is %s; want %q at seq %d", names[i], k, pushdtest.OneLine(ev), bySeq[want], want)
			}
			pub, j, _ := strings.Cut(ev.Text, "-")
			pi, _ := strconv.Atoi(pub)
			if j != strconv.Itoa(next[pi]) {
				t.Fatalf("%s: publisher %d's event %s came out of order", names[i], pi, ev.Text)
			}
			next[pi]++
		}
	}

	// Clients leave; the server's cleanup shuts it down and TestMain checks
	// for leaked goroutines.
	for _, sub := range subs {
		sub.Close()
	}
	p.WaitConnections(t, "ws", 0)
	p.WaitConnections(t, "sse", 0)
}

// Without the batch subprotocol every WebSocket message is one event; with
// it, a backlog arrives packed into messages of several events.
func TestWebSocketBatchSubprotocol(t *testing.T) {
	p := pushdtest.Start(t, server.Config{})
	const n = 50
	var last protocol.Event
	for i := range n {
		last = p.PublishDirect(t, "lobby", "alice", "m"+strconv.Itoa(i+1))
	}

	plain := p.DialWS(t, "/v1/rooms/lobby/events?since=0", nil)
	for i := range n {
		msg := pushdtest.ReadWS(t, plain)
		if strings.Contains(string(msg), "\n") {
			t.Fatalf("message %d %q holds more than one event without the batch subprotocol", i, msg)
		}
		if ev := pushdtest.CheckEvent(t, msg); ev.Seq != uint64(i+1) {
			t.Fatalf("message %d is seq %d", i, ev.Seq)
		}
	}

	// An unknown subprotocol is not agreed to; nor is batching then.
	other := p.DialWS(t, "/v1/rooms/lobby/events?since="+strconv.Itoa(n-1), p.Client)
	if ev := pushdtest.CheckEvent(t, pushdtest.ReadWS(t, other)); ev.Seq != n {
		t.Fatalf("got seq %d; want %d", ev.Seq, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), pushdtest.Timeout)
	defer cancel()
	odd, _, err := websocket.Dial(ctx, p.WS+"/v1/rooms/lobby/events?since="+strconv.Itoa(n-1), &websocket.DialOptions{HTTPClient: p.Client, Subprotocols: []string{"pushd.batch.v2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = odd.CloseNow() })
	if odd.Subprotocol() != "" {
		t.Fatalf("server agreed to %q, which it does not speak", odd.Subprotocol())
	}

	batched := p.DialWS(t, "/v1/rooms/lobby/events?since=0", nil, protocol.BatchSubprotocol)
	var seqs []uint64
	messages, multi := 0, 0
	for len(seqs) < n {
		msg := pushdtest.ReadWS(t, batched)
		messages++
		lines := strings.Split(string(msg), "\n")
		if len(lines) > 1 {
			multi++
		}
		for _, line := range lines {
			seqs = append(seqs, pushdtest.CheckEvent(t, []byte(line)).Seq)
		}
	}
	for i, seq := range seqs {
		if seq != uint64(i+1) {
			t.Fatalf("batched seqs %v; want 1..%d", seqs, n)
		}
	}
	if multi == 0 {
		t.Fatalf("%d events of a backlog came in %d messages of one event each; with %s they should be packed", n, messages, protocol.BatchSubprotocol)
	}
	if seqs[len(seqs)-1] != last.Seq {
		t.Fatalf("last seq %d; want %d", seqs[len(seqs)-1], last.Seq)
	}
}

// An SSE stream starts with retry:, carries id/event/data frames, and gets
// a heartbeat comment while idle.
func TestSSEFramesAndHeartbeat(t *testing.T) {
	p := pushdtest.Start(t, server.Config{Heartbeat: 20 * time.Millisecond})
	ev := p.Publish(t, "lobby", "alice", "hello")
	s := p.DialSSE(t, "/v1/rooms/lobby/events?since=0")
	if xab := s.Resp.Header.Get("X-Accel-Buffering"); xab != "no" {
		t.Errorf("X-Accel-Buffering %q; want no", xab)
	}
	if f := s.Frame(t); f.Retry != "2000" || f.HasID || f.Event != "" || f.Data != "" || len(f.Comments) != 0 {
		t.Fatalf("first frame %+v; want retry: 2000 alone", f)
	}
	// The event frame may follow a heartbeat if the test is slow, but it
	// must come, and as one frame.
	var got protocol.Event
	for {
		f := s.Frame(t)
		if len(f.Comments) > 0 {
			if f.Comments[0] != "heartbeat" || f.HasID || f.Data != "" {
				t.Fatalf("comment frame %+v; want \": heartbeat\" alone", f)
			}
			continue
		}
		got = pushdtest.CheckSSEEvent(t, f)
		if f.ID != ev.Epoch+":1" || f.Event != "message" {
			t.Fatalf("frame id %q event %q; want %s:1 message", f.ID, f.Event, ev.Epoch)
		}
		break
	}
	if got.Text != "hello" || got.Seq != 1 {
		t.Fatalf("got %s; want alice's hello at 1", pushdtest.OneLine(got))
	}
	// Idle now: heartbeats come, several of them.
	for i := range 3 {
		f := s.Frame(t)
		if len(f.Comments) != 1 || f.Comments[0] != "heartbeat" || f.HasID || f.Event != "" || f.Data != "" {
			t.Fatalf("idle frame %d: %+v; want \": heartbeat\"", i, f)
		}
	}
}

// Last-Event-ID, which a reconnecting EventSource sends, wins over ?since=.
func TestSSELastEventIDWinsOverSince(t *testing.T) {
	p := pushdtest.Start(t, server.Config{})
	var evs []protocol.Event
	for i := range 5 {
		evs = append(evs, p.Publish(t, "lobby", "alice", "m"+strconv.Itoa(i+1)))
	}
	sub := p.Subscribe(t, pushdtest.SSE, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{Since: "1", LastEventID: evs[2].Cursor().String()})
	pushdtest.CheckMessages(t, sub.NextN(t, 2), evs[0].Epoch, 4, []string{"m4", "m5"})

	// A bare seq works as Last-Event-ID too, and ?since= alone is honoured.
	sub = p.Subscribe(t, pushdtest.SSE, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{Since: "0", LastEventID: "4"})
	pushdtest.CheckMessages(t, sub.NextN(t, 1), evs[0].Epoch, 5, []string{"m5"})
	sub = p.Subscribe(t, pushdtest.SSE, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{Since: evs[3].Cursor().String()})
	pushdtest.CheckMessages(t, sub.NextN(t, 1), evs[0].Epoch, 5, []string{"m5"})
}

// Long polling: an answer as soon as there is an event, an empty answer
// with the same cursor when wait runs out, at most 1,000 events per answer.
func TestLongPoll(t *testing.T) {
	p := pushdtest.Start(t, server.Config{})
	head := p.Head(t, pushdtest.RoomPath("lobby"))
	if head.Seq != 0 || head.Epoch == "" {
		t.Fatalf("head of an empty room %s; want <epoch>:0", head)
	}

	// A poll that waits gets the event published while it waits.
	waiting := p.PollAsync(t, pushdtest.RoomPath("lobby"), "since="+head.String()+"&wait=20s")
	p.WaitConnections(t, "longpoll", 1)
	ev := p.Publish(t, "lobby", "alice", "wake up")
	woken, _ := testwait.Recv(t, pushdtest.Timeout, waiting, "answer of the waiting poll after a publish")
	pushdtest.CheckMessages(t, woken.Events, head.Epoch, 1, []string{"wake up"})

	// Nothing new: the wait runs out, with no events and the same cursor.
	evs, cur := p.Poll(t, pushdtest.RoomPath("lobby"), "since="+ev.Cursor().String()+"&wait=30ms")
	if len(evs) != 0 || cur != ev.Cursor().String() {
		t.Fatalf("idle poll: %d events, cursor %s; want none and %s", len(evs), cur, ev.Cursor())
	}
	// Whole seconds work as wait too, and a bare seq as since.
	evs, cur = p.Poll(t, pushdtest.RoomPath("lobby"), "since=0&wait=1")
	if len(evs) != 1 || cur != ev.Cursor().String() {
		t.Fatalf("poll since 0: %s, cursor %s", pushdtest.Summary(evs), cur)
	}

	// A backlog over 1,000 comes in pages.
	for i := range 1204 {
		p.PublishDirect(t, "lobby", "bob", "b-"+strconv.Itoa(i+1))
	}
	evs, cur = p.Poll(t, pushdtest.RoomPath("lobby"), "since="+ev.Cursor().String()+"&wait=0")
	pushdtest.CheckMessages(t, evs, head.Epoch, 2, pushdtest.Texts("b", 1000))
	if want := (protocol.Cursor{Epoch: head.Epoch, Seq: 1001}).String(); cur != want {
		t.Fatalf("cursor after a full page %s; want %s", cur, want)
	}
	evs, cur = p.Poll(t, pushdtest.RoomPath("lobby"), "since="+cur+"&wait=0")
	pushdtest.CheckMessages(t, evs, head.Epoch, 1002, pushdtest.Texts("b", 1204)[1000:])
	if want := (protocol.Cursor{Epoch: head.Epoch, Seq: 1205}).String(); cur != want {
		t.Fatalf("cursor after the last page %s; want %s", cur, want)
	}
}

// wait is capped at the server's LongPollWait, which is also the wait of a
// poll that names none.
func TestLongPollWaitCapped(t *testing.T) {
	p := pushdtest.Start(t, server.Config{LongPollWait: 50 * time.Millisecond})
	head := p.Head(t, pushdtest.RoomPath("lobby"))
	for _, q := range []string{"wait=1h", "wait=3600", ""} {
		evs, cur := p.Poll(t, pushdtest.RoomPath("lobby"), "since="+head.String()+"&"+q)
		if len(evs) != 0 || cur != head.String() {
			t.Fatalf("poll %q on an idle room: %s, cursor %s", q, pushdtest.Summary(evs), cur)
		}
	}
}

// A short poll (wait=0) answers at once: without since, no events and the
// current cursor; with since, what there is.
func TestShortPoll(t *testing.T) {
	p := pushdtest.Start(t, server.Config{})
	a := p.Publish(t, "lobby", "alice", "one")
	b := p.Publish(t, "lobby", "bob", "two")
	evs, cur := p.Poll(t, pushdtest.RoomPath("lobby"), "wait=0")
	if len(evs) != 0 || cur != b.Cursor().String() {
		t.Fatalf("short poll without since: %s, cursor %s; want none and %s", pushdtest.Summary(evs), cur, b.Cursor())
	}
	evs, cur = p.Poll(t, pushdtest.RoomPath("lobby"), "wait=0&since="+a.Cursor().String())
	pushdtest.CheckMessages(t, evs, a.Epoch, 2, []string{"two"})
	if cur != b.Cursor().String() {
		t.Fatalf("cursor %s; want %s", cur, b.Cursor())
	}
	evs, cur = p.Poll(t, pushdtest.RoomPath("lobby"), "wait=0s&since="+cur)
	if len(evs) != 0 || cur != b.Cursor().String() {
		t.Fatalf("short poll at the head: %s, cursor %s", pushdtest.Summary(evs), cur)
	}
}

// The health check answers while the server serves.
func TestHealth(t *testing.T) {
	p := pushdtest.Start(t, server.Config{})
	a := p.Get(t, "/healthz")
	status, hdr, body := a.Status, a.Header, a.Body
	if status != http.StatusOK || hdr.Get("Content-Type") != "application/json" || strings.TrimSpace(string(body)) != `{"status":"ok"}` {
		t.Fatalf("healthz: %d %q %s", status, hdr.Get("Content-Type"), body)
	}
}

// rawWS is a WebSocket client written by hand, to see and answer (or not)
// the server's control frames.
type rawWS struct {
	c  net.Conn
	br *bufio.Reader
}

// dialRawWS makes the upgrade by hand.
func dialRawWS(t testing.TB, p *pushdtest.Server, path string) *rawWS {
	t.Helper()
	addr := strings.TrimPrefix(p.URL, "http://")
	c, br, resp := rawRequest(t, p, "GET "+path+" HTTP/1.1\r\nHost: "+addr+"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v", resp)
	}
	return &rawWS{c: c, br: br}
}

// frame reads one frame: its opcode and payload.
func (w *rawWS) frame() (byte, []byte, error) {
	_ = w.c.SetReadDeadline(time.Now().Add(pushdtest.Timeout))
	var h [2]byte
	if _, err := io.ReadFull(w.br, h[:]); err != nil {
		return 0, nil, err
	}
	if h[1]&0x80 != 0 {
		return 0, nil, errors.New("the server masked a frame")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(w.br, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(w.br, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(w.br, payload); err != nil {
		return 0, nil, err
	}
	return h[0] & 0x0f, payload, nil
}

// pong answers a ping with its payload, masked as a client must.
func (w *rawWS) pong(t testing.TB, payload []byte) {
	t.Helper()
	mask := [4]byte{1, 2, 3, 4}
	b := []byte{0x8a, 0x80 | byte(len(payload)), mask[0], mask[1], mask[2], mask[3]}
	for i, c := range payload {
		b = append(b, c^mask[i%4])
	}
	if _, err := w.c.Write(b); err != nil {
		t.Fatal(err)
	}
}

const (
	opText  = 0x1
	opClose = 0x8
	opPing  = 0x9
)

// An idle WebSocket gets pings; a client that answers them keeps its
// connection and its events, one that does not is dropped.
func TestWebSocketHeartbeatPings(t *testing.T) {
	p := pushdtest.Start(t, server.Config{Heartbeat: 20 * time.Millisecond, WriteTimeout: 300 * time.Millisecond})
	w := dialRawWS(t, p, "/v1/rooms/lobby/events")
	pings := 0
	for pings < 3 {
		op, payload, err := w.frame()
		if err != nil {
			t.Fatalf("after %d pings: %v", pings, err)
		}
		if op != opPing {
			t.Fatalf("idle connection got opcode %#x %q; want pings", op, payload)
		}
		pings++
		w.pong(t, payload)
	}
	// Still connected, still served.
	ev := p.Publish(t, "lobby", "alice", "still here")
	for {
		op, payload, err := w.frame()
		if err != nil {
			t.Fatal(err)
		}
		if op == opPing {
			w.pong(t, payload)
			continue
		}
		if op != opText {
			t.Fatalf("opcode %#x %q; want the event", op, payload)
		}
		if got := pushdtest.CheckEvent(t, payload); got.Seq != ev.Seq || got.Text != "still here" {
			t.Fatalf("got %s", pushdtest.OneLine(got))
		}
		break
	}
	// Now it stops answering: the server gives up on it.
	for {
		op, payload, err := w.frame()
		if err != nil {
			break // the server closed the connection
		}
		if op == opClose {
			t.Logf("close frame %x", payload)
			continue
		}
		if op != opPing {
			t.Fatalf("opcode %#x %q while not answering pings", op, payload)
		}
	}
	p.WaitConnections(t, "ws", 0)
}

// Clients that send a subscribe request and at once close their side must
// never take the server down (the pusher starts with its connection's
// context already ended).
func TestHalfClosedSubscribersDoNotCrashTheServer(t *testing.T) {
	s := pushdtest.Start(t, server.Config{})
	addr := strings.TrimPrefix(s.URL, "http://")
	requests := []string{
		"GET /v1/rooms/half/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n",
		"GET /v1/rooms/half/events HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
	}
	var wg sync.WaitGroup
	for i := range 400 {
		wg.Go(func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return
			}
			defer c.Close()
			_, _ = c.Write([]byte(requests[i%2]))
			_ = c.(*net.TCPConn).CloseWrite()
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, _ = bufio.NewReader(c).ReadString('\n')
		})
	}
	wg.Wait()
	if status, _ := call(t, s, "POST", "/v1/rooms/half/messages", "", `{"user":"u","text":"still up"}`); status != 201 {
		t.Fatalf("publish after the half-closed clients: %d", status)
	}
}

// Shutdown tells every subscriber to reconnect (WebSocket close 1012, SSE
// close event, an answer to a waiting long poll), waits for them, and
// returns; new subscriptions are refused meanwhile.
func TestShutdownTellsSubscribersToReconnect(t *testing.T) {
	p := pushdtest.Start(t, server.Config{})
	last := p.Publish(t, "lobby", "alice", "before")
	ws := p.DialWS(t, "/v1/rooms/lobby/events?user=alice", nil)
	sse := p.Subscribe(t, pushdtest.SSE, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{Since: last.Cursor().String(), User: "bob"})
	// Both logins are in before the poll starts, so it waits.
	testwait.Until(t, pushdtest.Timeout, 5*time.Millisecond, func() error {
		if got := p.Presence(t, "lobby"); len(got) != 2 {
			return errors.New("alice and bob not both present yet")
		}
		return nil
	})
	head := p.Head(t, pushdtest.RoomPath("lobby"))
	polling := p.PollAsync(t, pushdtest.RoomPath("lobby"), "wait=25s&since="+head.String())
	p.WaitConnections(t, "longpoll", 1)

	shutdownDone := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), pushdtest.Timeout)
		defer cancel()
		shutdownDone <- p.Srv().Shutdown(ctx)
	}()

	// The WebSocket gets the two logins, then close 1012 server_shutdown.
	ctx, cancel := context.WithTimeout(context.Background(), pushdtest.Timeout)
	defer cancel()
	var closeErr error
	for {
		_, msg, err := ws.Read(ctx)
		if err != nil {
			closeErr = err
			break
		}
		pushdtest.CheckEvent(t, msg)
	}
	if code := websocket.CloseStatus(closeErr); code != protocol.CloseCodeServiceRestart {
		t.Fatalf("WebSocket ended with %v; want close %d", closeErr, protocol.CloseCodeServiceRestart)
	}
	var ce websocket.CloseError
	if errors.As(closeErr, &ce); ce.Reason != protocol.CloseShutdown {
		t.Fatalf("WebSocket close reason %q; want %q", ce.Reason, protocol.CloseShutdown)
	}

	// SSE: the two logins (in either order: a WebSocket joins presence
	// once its upgrade is done, so alice's may follow bob's), then a close
	// frame without an id.
	logins := map[string]bool{}
	for range 2 {
		ev := sse.Next(t)
		if ev.Type != protocol.TypeLogin || (ev.User != "alice" && ev.User != "bob") || logins[ev.User] {
			t.Fatalf("SSE got %s; want alice's and bob's logins", pushdtest.OneLine(ev))
		}
		logins[ev.User] = true
	}
	var f pushdtest.SSEFrame
	for {
		if f = sse.SSE().Frame(t); len(f.Comments) == 0 {
			break
		}
	}
	var body struct{ Reason, Message string }
	if err := json.Unmarshal([]byte(f.Data), &body); f.Event != "close" || f.HasID || err != nil ||
		body.Reason != protocol.CloseShutdown || body.Message == "" {
		t.Fatalf("SSE frame %+v at shutdown; want event: close with reason %s and no id", f, protocol.CloseShutdown)
	}

	// The long poll is answered: no events, the cursor where it was.
	polled, _ := testwait.Recv(t, pushdtest.Timeout, polling, "answer of the waiting long poll")
	if len(polled.Events) != 0 || polled.Cursor != head.String() {
		t.Fatalf("long poll at shutdown: %s, cursor %s; want none and %s", pushdtest.Summary(polled.Events), polled.Cursor, head)
	}

	if err, _ := testwait.Recv(t, pushdtest.Timeout, shutdownDone, "return from Shutdown"); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}

	// New subscriptions are refused with 503 while the server stops.
	p.Get(t, "/v1/rooms/lobby/events?wait=1s").WantError(t, http.StatusServiceUnavailable, protocol.CodeUnavailable)
}

// Shutdown with nobody connected returns at once, and twice is harmless.
func TestShutdownIdle(t *testing.T) {
	p := pushdtest.Start(t, server.Config{})
	p.Publish(t, "lobby", "alice", "hi")
	ctx, cancel := context.WithTimeout(context.Background(), pushdtest.Timeout)
	defer cancel()
	if err := p.Srv().Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Srv().Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

// Shutdown gives up when ctx ends before the subscribers have gone, and
// says so.
func TestShutdownHonoursContext(t *testing.T) {
	p := pushdtest.Start(t, server.Config{})
	// A subscriber whose writes block cannot be told in time; an expired
	// context makes Shutdown return anyway.
	p.DialWS(t, "/v1/rooms/lobby/events", nil)
	p.WaitConnections(t, "ws", 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Srv().Shutdown(ctx); err == nil {
		// The subscriber may already have gone; then nil is right.
		if n, _ := p.Connections(t, "ws"); n != 0 {
			t.Fatal("Shutdown with a cancelled context returned nil while a subscriber was still connected")
		}
	} else if !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown: %v; want it to wrap context.Canceled", err)
	}
}
