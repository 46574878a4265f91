package natsstore_test

// Events across servers: pushd servers on one embedded NATS (started with
// the cluster helpers), each following the streams it serves. Events,
// resumes and publishes with ids cross servers, and outages of NATS are
// told to subscribers as such.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pushd/push/bench"
	"github.com/pushd/push/client"
	"github.com/pushd/push/internal/natstest"
	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// collect reads n events from sub.
func collect(t *testing.T, sub *client.Subscription, n int) []protocol.Event {
	t.Helper()
	var got []protocol.Event
	for len(got) < n {
		ev, ok := testwait.Recv(t, pushdtest.Timeout, sub.Events(), fmt.Sprintf("event %d of %d", len(got)+1, n))
		if !ok {
			t.Fatalf("subscription ended after %d of %d events: %v", len(got), n, sub.Err())
		}
		got = append(got, ev)
	}
	return got
}

// checkMessages checks that got are the messages want, in order, in one
// epoch, with seqs that follow on from after with no gap.
func checkMessages(t *testing.T, got []protocol.Event, after uint64, want []string) {
	t.Helper()
	epoch := ""
	if len(got) > 0 {
		epoch = got[0].Epoch
	}
	pushdtest.CheckMessages(t, got, epoch, after+1, want)
}

func TestEventsCrossNodesOnEveryTransport(t *testing.T) {
	_, a, b := startPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tr := range []client.Transport{client.TransportWebSocket, client.TransportSSE, client.TransportLongPoll} {
		t.Run(string(tr), func(t *testing.T) {
			room := "cross-" + string(tr)
			onA := a.Client.Subscribe(ctx, client.Room(room), client.SubscribeOptions{Transport: tr, Since: "0", MaxRetries: 3})
			defer onA.Close()
			onB := b.Client.Subscribe(ctx, client.Room(room), client.SubscribeOptions{Transport: tr, Since: "0", MaxRetries: 3})
			defer onB.Close()
			var want []string
			for i := range 20 {
				text := fmt.Sprintf("m%d", i)
				from := a
				if i%2 == 1 {
					from = b // both nodes publish, interleaved
				}
				from.Publish(t, room, "tester", text)
				want = append(want, text)
			}
			checkMessages(t, collect(t, onA, 20), 0, want)
			checkMessages(t, collect(t, onB, 20), 0, want)
		})
	}
}

func TestResumeOnAnotherNode(t *testing.T) {
	_, a, b := startPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const room = "moving"
	var want []string
	publish := func(n *clusterNode, count int) {
		for range count {
			text := fmt.Sprintf("m%d", len(want))
			n.Publish(t, room, "tester", text)
			want = append(want, text)
		}
	}
	publish(a, 10)
	sub := a.Client.Subscribe(ctx, client.Room(room), client.SubscribeOptions{Transport: client.TransportWebSocket, Since: "0", MaxRetries: 3})
	first := collect(t, sub, 6)
	sub.Close()
	checkMessages(t, first, 0, want[:6])
	cursor := protocol.Cursor{Epoch: first[5].Epoch, Seq: first[5].Seq}

	// The client moves to B while events keep coming on both nodes; the
	// last ones are published on A just before the resume, so B may not
	// have seen them yet when the client arrives.
	publish(b, 5)
	publish(a, 5)
	for _, tr := range []client.Transport{client.TransportWebSocket, client.TransportSSE, client.TransportLongPoll} {
		sub := b.Client.Subscribe(ctx, client.Room(room), client.SubscribeOptions{Transport: tr, Since: cursor.String(), MaxRetries: 3})
		rest := collect(t, sub, len(want)-6)
		sub.Close()
		checkMessages(t, rest, 6, want[6:])
	}
}

func TestCursorFromAnotherNodeAheadOfItsTail(t *testing.T) {
	_, a, b := startPair(t)
	// B opens the stream first, so it follows it from its start.
	b.Poll(t, pushdtest.RoomPath("ahead"), "since=0&wait=0")
	for i := range 50 {
		ev := a.Publish(t, "ahead", "tester", fmt.Sprint(i))
		// Straight to B with the cursor A just gave out: never a reset.
		evs, _ := b.Poll(t, pushdtest.RoomPath("ahead"), "wait=0&since="+ev.Cursor().String())
		for _, got := range evs {
			if got.Type == protocol.TypeReset {
				t.Fatalf("resume at %d on the other node: reset %s", ev.Seq, got.Reason)
			}
		}
	}
}

// While NATS is away both nodes answer /readyz with 503 and refuse
// publishes with 503 unavailable and a Retry-After; once it is back, a
// subscriber that stayed connected gets every acknowledged event once, in
// order.
func TestNATSOutage(t *testing.T) {
	ns, a, b := startPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const room = "outage"
	sub := b.Client.Subscribe(ctx, client.Room(room), client.SubscribeOptions{Transport: client.TransportSSE, Since: "0", MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond})
	defer sub.Close()
	acked, _ := a.publishN(t, room, "before", 5)
	if a := a.Get(t, "/readyz"); a.Status != http.StatusOK {
		t.Fatalf("GET /readyz: %d %s, want 200", a.Status, a.Body)
	}

	ns.Stop()
	a.waitReady(t, http.StatusServiceUnavailable)
	b.waitReady(t, http.StatusServiceUnavailable)
	// Publishes fail with a clear 503 while NATS is away.
	for range 3 {
		_, err := a.Client.Publish(ctx, room, "lost")
		var pe *protocol.Error
		if !errors.As(err, &pe) || pe.Status != http.StatusServiceUnavailable || pe.Code != protocol.CodeUnavailable || !strings.Contains(pe.Message, "retry") {
			t.Fatalf("publish during the outage: %v, want 503 unavailable", err)
		}
		if d := client.RetryAfter(err); d != time.Second {
			t.Fatalf("publish during the outage: Retry-After %v, want 1s", d)
		}
	}

	ns.Restart()
	a.waitReady(t, http.StatusOK)
	b.waitReady(t, http.StatusOK)
	for i := range 5 {
		text := fmt.Sprintf("after%d", i)
		testwait.Until(t, 15*time.Second, 100*time.Millisecond, func() error {
			if _, err := a.Client.Publish(ctx, room, text); err != nil {
				return fmt.Errorf("publish after NATS came back: %w", err)
			}
			return nil
		})
		acked = append(acked, text)
	}
	// The subscriber on B, which NATS's outage did not disconnect from
	// pushd, gets every acknowledged event once, in order.
	checkMessages(t, collect(t, sub, len(acked)), 0, acked)
}

// The load generator subscribes on one node and publishes on the other:
// every subscriber gets every message once, in order, over every
// transport.
func TestBenchAcrossNodes(t *testing.T) {
	_, a, b := startPair(t)
	for _, tr := range []bench.Transport{bench.WebSocket, bench.SSE, bench.LongPoll} {
		t.Run(string(tr), func(t *testing.T) {
			o := bench.DefaultOptions()
			o.Targets, o.PublishTo = []string{b.URL}, a.URL
			o.Transport, o.Subscribers, o.Messages, o.Publishers = tr, 20, 200, 4
			o.Timeout = 60 * time.Second
			rep, err := bench.Run(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if err := rep.Check(); err != nil {
				t.Fatal(err)
			}
			if rep.Deliveries != rep.Expected || rep.Expected != 20*200 {
				t.Fatalf("%d of %d deliveries", rep.Deliveries, rep.Expected)
			}
		})
	}
}

// A JetStream stream deleted behind pushd's back (an operator, or a NATS
// that lost its data) is a new history: both nodes move to its epoch, and
// a client resuming with a cursor of the old one gets a reset and the new
// events, never a hang or a gap.
func TestStreamMadeAnew(t *testing.T) {
	_, a, b := startPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const room = "anew"
	_, old := a.publishN(t, room, "old", 3)
	// b follows the stream from here on.
	if p, err := b.Client.Poll(ctx, client.Room(room), client.PollOptions{Since: "0", Wait: 5 * time.Second}); err != nil || len(p.Events) == 0 {
		t.Fatalf("poll b: %v", err)
	}
	if err := a.Store.JetStream().DeleteStream(ctx, a.Store.StreamName("room/"+room)); err != nil {
		t.Fatal(err)
	}
	var fresh []string
	testwait.Until(t, 20*time.Second, 50*time.Millisecond, func() error {
		for len(fresh) < 3 {
			text := fmt.Sprintf("new%d", len(fresh))
			if _, err := a.Client.Publish(ctx, room, text); err != nil {
				return fmt.Errorf("publish into the new history: %w", err)
			}
			fresh = append(fresh, text)
		}
		return nil
	})
	// Each node moves to the new history when its following of the stream
	// fails and starts again, after a backoff of up to a few seconds; a
	// loaded machine may take longer.
	cursor := protocol.Cursor{Epoch: old.Epoch, Seq: old.Seq}.String()
	for _, n := range []*clusterNode{a, b} {
		var got []protocol.Event
		testwait.Until(t, 40*time.Second, 50*time.Millisecond, func() error {
			p, err := n.Client.Poll(ctx, client.Room(room), client.PollOptions{Since: cursor, Wait: time.Second})
			if err == nil && len(p.Events) > 0 && p.Events[0].Type == protocol.TypeReset && p.Events[0].Epoch != old.Epoch {
				if got = p.Events[1:]; len(got) == len(fresh) {
					return nil
				}
			}
			return fmt.Errorf("poll %s with the old cursor: %v, %+v; want a reset into the new epoch and %d events", n.URL, err, p, len(fresh))
		})
		checkMessages(t, got, 0, fresh)
	}
}

// On shutdown, a node's own subscribers get the final events of the tasks
// it cancels before their streams end, though those events reach them by
// following NATS.
func TestShutdownDeliversFinalTaskEvents(t *testing.T) {
	ns := natstest.Start(t)
	for round := range 5 {
		n := startNode(t, ns.URL(), server.Config{})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		task, err := n.Client.StartTask(ctx, client.TaskSpec{Kind: "demo", Name: fmt.Sprintf("long%d", round), Params: map[string]any{"total": 1000, "interval": "1s"}})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		sub := n.Client.Subscribe(ctx, client.Task(task.ID), client.SubscribeOptions{Transport: client.TransportSSE, Since: "0", MaxRetries: 1})
		// Wait until the subscriber is live: it has the queued event.
		collect(t, sub, 1)
		sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
		if err := n.Srv().Shutdown(sctx); err != nil {
			t.Fatal(err)
		}
		scancel()
		final := false
		for ev := range sub.Events() {
			if ev.Task != nil && ev.Task.State == protocol.TaskCancelled {
				final = true
				break
			}
		}
		sub.Close()
		cancel()
		if !final {
			t.Fatalf("round %d: the subscriber's stream ended without the task's final event", round)
		}
	}
}

// A subscriber catching up from the log when NATS goes away is told to
// come back later (close 1013, "unavailable"), not that the server failed;
// a new subscription that needs the log meanwhile is refused with 503.
func TestCatchUpDuringOutageSaysTryAgain(t *testing.T) {
	ns := natstest.Start(t)
	a := startNode(t, ns.URL(), server.Config{TailSize: 8})
	// More than the socket buffers hold (8 MiB), so the catch-up is still
	// reading the log when NATS goes.
	const events = 8000
	pctx, pcancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer pcancel()
	var wg sync.WaitGroup
	for w := range 64 {
		wg.Go(func() {
			for i := w; i < events; i += 64 {
				if _, err := a.Srv().Hub().Publish(pctx, "room/later", protocol.Event{Type: protocol.TypeMessage, User: "u", Text: fmt.Sprintf("%01024d", i)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(a.URL, "http") + "/v1/rooms/later/events?since=0"
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	if _, _, err := c.Read(ctx); err != nil {
		t.Fatal(err)
	}
	ns.Stop()
	a.waitReady(t, http.StatusServiceUnavailable)
	got := 1
	for {
		_, _, err := c.Read(ctx)
		if err == nil {
			got++
			continue
		}
		if code := websocket.CloseStatus(err); code != protocol.CloseCodeTryAgainLater {
			t.Fatalf("after %d events the connection ended with %v (code %d); want %d", got, err, code, protocol.CloseCodeTryAgainLater)
		}
		break
	}
	if got >= events {
		t.Fatalf("got all %d events: the catch-up never needed NATS after it went", got)
	}
	if _, _, err := websocket.Dial(ctx, url, nil); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("a new subscription from the start during the outage: %v; want 503", err)
	}
}

// A node lets go of a stream no one has used for its idle time: it stops
// following it (its consumer goes), and when the stream is used again the
// node picks it up where the store has it, events from other nodes
// meanwhile included.
func TestIdleStreamIsNoLongerFollowed(t *testing.T) {
	ns := natstest.Start(t)
	a := startNode(t, ns.URL(), server.Config{StreamIdle: 100 * time.Millisecond})
	b := startNode(t, ns.URL(), server.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const room = "quiet"
	_, last := a.publishN(t, room, "before", 3)
	consumers := func() int {
		info, err := a.Store.JetStream().Stream(ctx, a.Store.StreamName("room/"+room))
		if err != nil {
			t.Fatal(err)
		}
		si, err := info.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return si.State.Consumers
	}
	waitConsumers := func(want int) {
		t.Helper()
		testwait.Until(t, 15*time.Second, 20*time.Millisecond, func() error {
			if n := consumers(); n != want {
				return fmt.Errorf("%d consumers of the room's stream; want %d", n, want)
			}
			return nil
		})
	}
	// A follows the room while a subscriber is there, however long.
	first := a.Client.Subscribe(ctx, client.Room(room), client.SubscribeOptions{Transport: client.TransportWebSocket, Since: "0", MaxRetries: 3})
	collect(t, first, 3)
	waitConsumers(1)
	time.Sleep(300 * time.Millisecond)
	a.Publish(t, "other", "tester", "tick")
	waitConsumers(1)
	first.Close()

	// Past the idle time, A's next request lets the room go.
	testwait.Until(t, 15*time.Second, 50*time.Millisecond, func() error {
		a.Publish(t, "other", "tester", "tick")
		if n := consumers(); n != 0 {
			return fmt.Errorf("%d consumers of the idle room's stream after its idle time; want 0", n)
		}
		return nil
	})

	// Events published meanwhile on B reach a subscriber on A that
	// resumes from before them, with no reset.
	want, _ := b.publishN(t, room, "after", 2)
	cursor := protocol.Cursor{Epoch: last.Epoch, Seq: last.Seq}
	sub := a.Client.Subscribe(ctx, client.Room(room), client.SubscribeOptions{Transport: client.TransportSSE, Since: cursor.String(), MaxRetries: 3})
	defer sub.Close()
	checkMessages(t, collect(t, sub, 2), last.Seq, want)
	waitConsumers(2) // A's again, and B's since its publishes
}

// TestPublishExactlyOnceAcrossNodes: a client publishes through a proxy
// that spreads its requests over two nodes, loses the answer to every
// third, and, half way, loses one node for good. Every message is in the
// room once, in order: a retry with the same id lands on the other node,
// and JetStream's de-duplication stores it once.
func TestPublishExactlyOnceAcrossNodes(t *testing.T) {
	ns := natstest.Start(t)
	a, b := startNode(t, ns.URL(), server.Config{}), startNode(t, ns.URL(), server.Config{})
	proxy := pushdtest.StartFaultyProxy(t, func(_ *http.Request, n int) pushdtest.Fault {
		if n%3 == 0 {
			return pushdtest.LoseAnswer
		}
		return pushdtest.Pass
	}, a.URL, b.URL)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c, err := client.New(proxy.URL, client.WithUser("tester"), client.WithHTTPClient(&http.Client{Transport: tr}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const room, total = "once", 40
	var want []string
	for i := 1; i <= total; i++ {
		if i == total/2 {
			b.Down(t) // off the network for good: its connections cut, new ones refused
			proxy.SetTargets(t, a.URL)
		}
		text := fmt.Sprintf("m%d", i)
		ev, err := c.Publish(ctx, room, text)
		if err != nil {
			t.Fatalf("publish %s: %v", text, err)
		}
		if ev.Text != text || ev.ID == "" {
			t.Fatalf("publish %s answered %+v", text, ev)
		}
		want = append(want, text)
	}
	if proxy.Count(pushdtest.LoseAnswer) == 0 {
		t.Fatal("no answer was lost: the test proves nothing")
	}
	sub := a.Client.Subscribe(ctx, client.Room(room), client.SubscribeOptions{Since: "0", MaxRetries: 3})
	defer sub.Close()
	checkMessages(t, collect(t, sub, total), 0, want)
	// Nothing more than those: the room's end is the last of them.
	cur, err := a.Client.Cursor(ctx, client.Room(room))
	if err != nil || cur.Seq != total {
		t.Fatalf("the room ends at %+v (%v); want seq %d", cur, err, total)
	}
}

// TestRepeatOnAnotherNodeAnswersTheFirst: a message id used on one node
// is known on the other: 200 with the first event, or 409 for other text.
func TestRepeatOnAnotherNodeAnswersTheFirst(t *testing.T) {
	ns := natstest.Start(t)
	a, b := startNode(t, ns.URL(), server.Config{}), startNode(t, ns.URL(), server.Config{})
	ctx := context.Background()
	first, err := a.Client.Publish(ctx, "r", "hello", client.WithID("shared-1"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := b.Client.Publish(ctx, "r", "hello", client.WithID("shared-1"))
	if err != nil || again.Seq != first.Seq || again.Epoch != first.Epoch || !again.Time.Equal(first.Time) {
		t.Fatalf("repeat on the other node: %+v, %v; want the first %+v", again, err, first)
	}
	_, err = b.Client.Publish(ctx, "r", "other", client.WithID("shared-1"))
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Status != http.StatusConflict {
		t.Fatalf("other text under the same id on the other node: %v; want 409", err)
	}
}
