package natsstore

// Tests of several servers on one NATS: events, resumes and outages. They
// are in the package's own namespace so their helpers stay apart from the
// presence and task tests'.

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

// node is one pushd server of a test cluster, with a client of its own.
type node struct {
	*pushdtest.Server
	store *Store
	cl    *client.Client
}

// startNode runs a pushd server on its own NATS connection until the test
// ends.
func startNode(t *testing.T, url string) *node {
	t.Helper()
	return startNodeWith(t, url, server.Config{})
}

// startNodeWith runs a node with cfg, its store set to a new NATS store.
func startNodeWith(t *testing.T, url string, cfg server.Config) *node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := Open(ctx, Options{URL: url, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() }) // after the server's shutdown
	cfg.Store = st
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = time.Second
	}
	s := pushdtest.Start(t, cfg)
	cl, err := client.New(s.URL, client.WithUser("tester"))
	if err != nil {
		t.Fatal(err)
	}
	return &node{Server: s, store: st, cl: cl}
}

// startPair runs two nodes on a new embedded NATS.
func startPair(t *testing.T) (ns *natstest.Server, a, b *node) {
	t.Helper()
	ns = natstest.Start(t)
	return ns, startNode(t, ns.URL()), startNode(t, ns.URL())
}

// publishN publishes count messages to room, prefix0 to
// prefix<count-1>, and returns their texts and the last as stored.
func (n *node) publishN(t *testing.T, room, prefix string, count int) ([]string, protocol.Event) {
	t.Helper()
	var texts []string
	var last protocol.Event
	for i := range count {
		texts = append(texts, fmt.Sprintf("%s%d", prefix, i))
		last = n.Publish(t, room, "tester", texts[i])
	}
	return texts, last
}

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
			onA := a.cl.Subscribe(ctx, client.Room(room), client.SubscribeOptions{Transport: tr, Since: "0", MaxRetries: 3})
			defer onA.Close()
			onB := b.cl.Subscribe(ctx, client.Room(room), client.SubscribeOptions{Transport: tr, Since: "0", MaxRetries: 3})
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
	publish := func(n *node, count int) {
		for range count {
			text := fmt.Sprintf("m%d", len(want))
			n.Publish(t, room, "tester", text)
			want = append(want, text)
		}
	}
	publish(a, 10)
	sub := a.cl.Subscribe(ctx, client.Room(room), client.SubscribeOptions{Transport: client.TransportWebSocket, Since: "0", MaxRetries: 3})
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
		sub := b.cl.Subscribe(ctx, client.Room(room), client.SubscribeOptions{Transport: tr, Since: cursor.String(), MaxRetries: 3})
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

func TestNATSOutage(t *testing.T) {
	ns, a, b := startPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const room = "outage"
	sub := b.cl.Subscribe(ctx, client.Room(room), client.SubscribeOptions{Transport: client.TransportSSE, Since: "0", MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond})
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
		_, err := a.cl.Publish(ctx, room, "lost")
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
			if _, err := a.cl.Publish(ctx, room, text); err != nil {
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

// waitReady waits until the node's /readyz answers want.
func (n *node) waitReady(t *testing.T, want int) {
	t.Helper()
	testwait.Until(t, pushdtest.Timeout, 50*time.Millisecond, func() error {
		if a := n.Get(t, "/readyz"); a.Status != want {
			return fmt.Errorf("GET /readyz: %d %s, want %d", a.Status, a.Body, want)
		}
		return nil
	})
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

func TestCheckVersion(t *testing.T) {
	for v, ok := range map[string]bool{"2.15.2": true, "2.11.0": true, "v2.12.1": true, "3.0.0": true, "2.10.24": false, "2.9.10": false, "1.4.1": false, "": false, "beta": false} {
		if err := checkVersion(v); (err == nil) != ok {
			t.Errorf("checkVersion(%q) = %v, want ok %v", v, err, ok)
		}
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
	if p, err := b.cl.Poll(ctx, client.Room(room), client.PollOptions{Since: "0", Wait: 5 * time.Second}); err != nil || len(p.Events) == 0 {
		t.Fatalf("poll b: %v", err)
	}
	if err := a.store.js.DeleteStream(ctx, a.store.streamName("room/"+room)); err != nil {
		t.Fatal(err)
	}
	var fresh []string
	testwait.Until(t, 20*time.Second, 50*time.Millisecond, func() error {
		for len(fresh) < 3 {
			text := fmt.Sprintf("new%d", len(fresh))
			if _, err := a.cl.Publish(ctx, room, text); err != nil {
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
	for _, n := range []*node{a, b} {
		var got []protocol.Event
		testwait.Until(t, 40*time.Second, 50*time.Millisecond, func() error {
			p, err := n.cl.Poll(ctx, client.Room(room), client.PollOptions{Since: cursor, Wait: time.Second})
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
		n := startNode(t, ns.URL())
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		task, err := n.cl.StartTask(ctx, client.TaskSpec{Kind: "demo", Name: fmt.Sprintf("long%d", round), Params: map[string]any{"total": 1000, "interval": "1s"}})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		sub := n.cl.Subscribe(ctx, client.Task(task.ID), client.SubscribeOptions{Transport: client.TransportSSE, Since: "0", MaxRetries: 1})
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
	a := startNodeWith(t, ns.URL(), server.Config{TailSize: 8})
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
	a := startNodeWith(t, ns.URL(), server.Config{StreamIdle: 100 * time.Millisecond})
	b := startNode(t, ns.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const room = "quiet"
	_, last := a.publishN(t, room, "before", 3)
	consumers := func() int {
		info, err := a.store.js.Stream(ctx, a.store.streamName("room/"+room))
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
	first := a.cl.Subscribe(ctx, client.Room(room), client.SubscribeOptions{Transport: client.TransportWebSocket, Since: "0", MaxRetries: 3})
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
	sub := a.cl.Subscribe(ctx, client.Room(room), client.SubscribeOptions{Transport: client.TransportSSE, Since: cursor.String(), MaxRetries: 3})
	defer sub.Close()
	checkMessages(t, collect(t, sub, 2), last.Seq, want)
	waitConsumers(2) // A's again, and B's since its publishes
}
