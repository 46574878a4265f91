package server_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// resumeOpts subscribes from a cursor the way a reconnecting client of
// that transport would: SSE with Last-Event-ID, the others with ?since=.
func resumeOpts(kind, cursor string) pushdtest.SubOptions {
	if kind == pushdtest.SSE {
		return pushdtest.SubOptions{LastEventID: cursor}
	}
	return pushdtest.SubOptions{Since: cursor}
}

// A client whose connection is cut, and that reconnects with the cursor of
// the last event it processed, gets exactly what it missed: nothing twice,
// nothing lost.
func TestResumeAfterDisconnect(t *testing.T) {
	for _, kind := range pushdtest.Transports {
		t.Run(kind, func(t *testing.T) {
			p := pushdtest.Start(t, server.Config{})
			first := []string{"a1", "a2", "a3"}
			for _, text := range first {
				p.Publish(t, "lobby", "alice", text)
			}
			sub := p.Subscribe(t, kind, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{Since: "0"})
			got := sub.NextN(t, 3)
			epoch := got[0].Epoch
			pushdtest.CheckMessages(t, got, epoch, 1, first)
			if kind == pushdtest.LongPoll {
				// A poll that is waiting when the client goes away.
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() {
					defer close(done)
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/v1/rooms/lobby/events?wait=20s&since="+got[2].Cursor().String(), nil)
					resp, err := p.Client.Do(req)
					if err == nil {
						resp.Body.Close()
						t.Errorf("the poll answered %d; it should have been cut off", resp.StatusCode)
					}
				}()
				p.WaitConnections(t, "longpoll", 1)
				cancel()
				<-done
			}
			sub.Close()
			if kind != pushdtest.LongPoll {
				p.WaitConnections(t, transportOf(kind), 0)
			}

			missed := []string{"b1", "b2", "b3", "b4"}
			for _, text := range missed {
				p.Publish(t, "lobby", "bob", text)
			}
			sub = p.Subscribe(t, kind, pushdtest.RoomPath("lobby"), resumeOpts(kind, got[2].Cursor().String()))
			pushdtest.CheckMessages(t, sub.NextN(t, 4), epoch, 4, missed)
			// And then only what is new.
			p.Publish(t, "lobby", "carol", "c1")
			pushdtest.CheckMessages(t, sub.NextN(t, 1), epoch, 8, []string{"c1"})
		})
	}
}

// transportOf names a kind's transport as the metrics do.
func transportOf(kind string) string {
	switch kind {
	case pushdtest.WS, pushdtest.WSBatch:
		return "ws"
	case pushdtest.SSE:
		return "sse"
	}
	return "longpoll"
}

// A subscriber far behind the in-memory tail still gets every event, in
// order: the hub reads the rest from the store.
func TestCatchUpFromStoreBehindTail(t *testing.T) {
	for _, kind := range pushdtest.Transports {
		t.Run(kind, func(t *testing.T) {
			p := pushdtest.Start(t, server.Config{TailSize: 8})
			const n = 300
			var epoch string
			for i := range n {
				epoch = p.PublishDirect(t, "lobby", "alice", "m-"+strconv.Itoa(i+1)).Epoch
			}
			sub := p.Subscribe(t, kind, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{Since: "0"})
			pushdtest.CheckMessages(t, sub.NextN(t, n), epoch, 1, pushdtest.Texts("m", n))
			// From the middle, too: part from the store, then the tail.
			sub = p.Subscribe(t, kind, pushdtest.RoomPath("lobby"), resumeOpts(kind, epoch+":137"))
			pushdtest.CheckMessages(t, sub.NextN(t, n-137), epoch, 138, pushdtest.Texts("m", n)[137:])
			// And what comes next, live.
			p.Publish(t, "lobby", "bob", "live")
			pushdtest.CheckMessages(t, sub.NextN(t, 1), epoch, n+1, []string{"live"})
		})
	}
}

// A live WebSocket subscriber that stops reading for a while, and falls
// behind the tail as a result, catches up from the store without loss once
// it reads again (its lag stays under MaxLag).
func TestLiveSubscriberFallsBehindTail(t *testing.T) {
	p := pushdtest.Start(t, server.Config{TailSize: 8, WriteTimeout: time.Minute})
	sub := p.Subscribe(t, pushdtest.WS, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{})
	first := p.PublishDirect(t, "lobby", "alice", "m-1")
	pushdtest.CheckMessages(t, sub.NextN(t, 1), first.Epoch, 1, []string{"m-1"})
	const n = 400
	for i := 1; i < n; i++ {
		p.PublishDirect(t, "lobby", "alice", "m-"+strconv.Itoa(i+1))
	}
	pushdtest.CheckMessages(t, sub.NextN(t, n-1), first.Epoch, 2, pushdtest.Texts("m", n)[1:])
}

// resetCase is a subscription that must begin with a reset.
type resetCase struct {
	name    string
	cfg     server.Config
	old     int // events published with a time two hours ago
	publish int // events published now, after the old ones
	since   func(epoch string) string
	reason  string
	resetAt uint64 // the reset's seq: the one before the first retained event
}

// A reset puts the subscriber just before the first event that follows it,
// whatever the reason, and then the retained events come in order.
func TestReset(t *testing.T) {
	runResetCases(t, pushdtest.Transports, []resetCase{
		{"stale epoch", server.Config{}, 0, 3, func(string) string { return "oldepoch0000:2" }, protocol.ResetEpochChanged, 0},
		{"stale epoch ahead", server.Config{}, 0, 3, func(string) string { return "oldepoch0000:99" }, protocol.ResetEpochChanged, 0},
		{"cursor ahead", server.Config{}, 0, 3, func(e string) string { return e + ":4" }, protocol.ResetCursorAhead, 0},
		{"bare cursor ahead", server.Config{}, 0, 3, func(string) string { return "100" }, protocol.ResetCursorAhead, 0},
		{"stale epoch, history truncated", server.Config{History: 5}, 0, 10, func(string) string { return "oldepoch0000:3" }, protocol.ResetEpochChanged, 5},
		{"history truncated behind a small tail", server.Config{History: 5, TailSize: 8}, 0, 40, func(e string) string { return e + ":2" }, protocol.ResetRetention, 35},
		{"history truncated from 0 behind a small tail", server.Config{History: 5, TailSize: 8}, 0, 40, func(string) string { return "0" }, protocol.ResetRetention, 35},
		// The in-memory tail (4,096 by default) still holds events the
		// store has dropped: retention is the store's all the same.
		{"history truncated", server.Config{History: 5}, 0, 10, func(e string) string { return e + ":2" }, protocol.ResetRetention, 5},
		{"history truncated from 0", server.Config{History: 5}, 0, 10, func(string) string { return "0" }, protocol.ResetRetention, 5},
		{"history truncated, just before the first retained", server.Config{History: 5}, 0, 10, func(e string) string { return e + ":4" }, protocol.ResetRetention, 5},
		{"history truncated by age", server.Config{HistoryAge: time.Hour}, 5, 5, func(string) string { return "0" }, protocol.ResetRetention, 5},
	})
}

func runResetCases(t *testing.T, kinds []string, cases []resetCase) {
	for _, c := range cases {
		for _, kind := range kinds {
			t.Run(c.name+"/"+kind, func(t *testing.T) {
				p := pushdtest.Start(t, c.cfg)
				var epoch string
				total := c.old + c.publish
				for i := range total {
					ev := protocol.Event{Type: protocol.TypeMessage, User: "alice", Text: "m-" + strconv.Itoa(i+1)}
					if i < c.old {
						ev.Time = time.Now().UTC().Add(-2 * time.Hour)
					}
					stored, err := p.Srv().Hub().Publish(context.Background(), protocol.RoomStream("lobby"), ev)
					if err != nil {
						t.Fatal(err)
					}
					epoch = stored.Epoch
				}
				sub := p.Subscribe(t, kind, pushdtest.RoomPath("lobby"), resumeOpts(kind, c.since(epoch)))
				reset := sub.Next(t)
				if reset.Type != protocol.TypeReset || reset.Reason != c.reason || reset.Epoch != epoch ||
					reset.Seq != c.resetAt || reset.Stream != "room/lobby" || reset.User != "" || reset.Text != "" {
					t.Fatalf("first event %s; want a reset (%s) at %s:%d", pushdtest.OneLine(reset), c.reason, epoch, c.resetAt)
				}
				n := total - int(c.resetAt)
				pushdtest.CheckMessages(t, sub.NextN(t, n), epoch, c.resetAt+1, pushdtest.Texts("m", total)[c.resetAt:])
				// The reset is a cursor like any other: resuming from it
				// gives the same events and no second reset.
				again := p.Subscribe(t, kind, pushdtest.RoomPath("lobby"), resumeOpts(kind, reset.Cursor().String()))
				pushdtest.CheckMessages(t, again.NextN(t, n), epoch, c.resetAt+1, pushdtest.Texts("m", total)[c.resetAt:])
				p.Publish(t, "lobby", "bob", "after")
				pushdtest.CheckMessages(t, again.NextN(t, 1), epoch, uint64(total)+1, []string{"after"})
			})
		}
	}
}

// A stream that has never had an event answers a stale cursor with a reset
// to its start.
func TestResetOnEmptyStream(t *testing.T) {
	p := pushdtest.Start(t, server.Config{})
	head := p.Head(t, pushdtest.RoomPath("empty"))
	evs, cur := p.Poll(t, pushdtest.RoomPath("empty"), "wait=0&since=oldepoch0000:7")
	if len(evs) != 1 || evs[0].Type != protocol.TypeReset || evs[0].Reason != protocol.ResetEpochChanged || evs[0].Seq != 0 || evs[0].Epoch != head.Epoch {
		t.Fatalf("poll with a stale cursor on an empty stream: %s; want one reset to %s", pushdtest.Summary(evs), head)
	}
	if cur != head.String() {
		t.Fatalf("cursor %s; want %s", cur, head)
	}
}
