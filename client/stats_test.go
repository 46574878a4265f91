package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/pushd/push/client"
	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
)

// The operators' view through the client: a snapshot, the stream on each
// transport, and a room's subscribers; across a server restart the stream
// resets and goes on.
func TestStats(t *testing.T) {
	s := startPushd(t)
	c := newClient(t, s, "ann")
	ctx := t.Context()
	sub := c.Subscribe(ctx, client.Room("lobby"), client.SubscribeOptions{User: "ann", Transport: client.TransportWebSocket})
	defer sub.Close()

	st, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Nodes) != 1 || st.Nodes[0].Process.Goroutines == 0 {
		t.Fatalf("stats %+v; want this server's", st)
	}
	s.WaitStats(t, func(st protocol.Stats) error {
		_, err := pushdtest.StreamStats(st, "room/lobby")
		return err
	})
	list, err := c.Subscribers(ctx, "room/lobby", 0)
	if err != nil {
		t.Fatal(err)
	}
	if list.Total != 1 || list.Subscribers[0].User != "ann" || list.Subscribers[0].Transport != "ws" {
		t.Errorf("subscribers %+v; want ann over ws", list)
	}

	for _, tr := range []client.Transport{client.TransportWebSocket, client.TransportSSE, client.TransportLongPoll} {
		t.Run(string(tr), func(t *testing.T) {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			w := c.Subscribe(ctx, client.Stats(), client.SubscribeOptions{Transport: tr})
			defer w.Close()
			ev := <-w.Events()
			if ev.Type != protocol.TypeStats || ev.Stream != "stats" || ev.Stats == nil || len(ev.Stats.Nodes) != 1 {
				t.Errorf("event %+v; want a stats event", ev)
			}
		})
	}

	w := c.Subscribe(ctx, client.Stats(), client.SubscribeOptions{MinBackoff: 10 * time.Millisecond})
	defer w.Close()
	first := <-w.Events()
	s.Restart(t)
	for ev := range w.Events() {
		if ev.Type == protocol.TypeReset {
			continue
		}
		if ev.Epoch != first.Epoch {
			return // the new server's stream
		}
	}
	t.Fatalf("the stats stream ended: %v", w.Err())
}
