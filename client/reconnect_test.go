package client_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/pushd/push/client"
	"github.com/pushd/push/protocol"
)

func TestResumeAfterDropDeliversEachEventOnce(t *testing.T) {
	for _, tc := range transportCases() {
		t.Run(tc.name, func(t *testing.T) {
			s := startPushd(t)
			c := newClient(t, s, "alice")
			var states record[client.StateChange]
			opts := tc.opts
			opts.OnState = states.add
			sub := subscribe(t, c, client.Room("lobby"), opts)
			waitState(t, sub, connectedWith(tc.want))

			// Publish from the server side while the test cuts every client
			// connection again and again; the subscriber reads meanwhile.
			const total, dropEvery = 60, 15
			hub := s.Srv().Hub()
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			for i := range total {
				if i > 0 && i%dropEvery == 0 {
					s.DropConns()
				}
				if _, err := hub.Publish(ctx, protocol.RoomStream("lobby"), protocol.Event{Type: protocol.TypeMessage, User: "bot", Text: fmt.Sprintf("m%02d", i)}); err != nil {
					t.Fatalf("hub publish: %v", err)
				}
			}
			got := recvN(t, sub, total)
			for i, ev := range got {
				if want := fmt.Sprintf("m%02d", i); ev.Text != want || ev.Type != protocol.TypeMessage {
					t.Fatalf("event %d: got %q (%s), want %q", i, ev.Text, ev.Type, want)
				}
				if i > 0 && (ev.Seq != got[i-1].Seq+1 || ev.Epoch != got[i-1].Epoch) {
					t.Fatalf("event %d: %s:%d after %s:%d", i, ev.Epoch, ev.Seq, got[i-1].Epoch, got[i-1].Seq)
				}
			}
			// Nothing is repeated after the last one either: the next event
			// is the next one published.
			last := publish(t, c, "lobby", "sentinel")
			sameEvent(t, recv(t, sub), *last)

			if tc.want == client.TransportWebSocket || tc.want == client.TransportSSE {
				// Streams notice the cut; polls may not (a cut idle
				// connection is retried by net/http on its own).
				if !states.has(func(sc client.StateChange) bool { return sc.State == client.StateReconnecting }) {
					t.Fatalf("no reconnecting state after the connections were cut: %+v", states.all())
				}
			}
		})
	}
}

func TestResetAfterServerRestart(t *testing.T) {
	for _, tc := range transportCases() {
		t.Run(tc.name, func(t *testing.T) {
			s := startPushd(t)
			c := newClient(t, s, "alice")
			opts := tc.opts
			opts.Since = "0"
			sub := subscribe(t, c, client.Room("lobby"), opts)
			var before []protocol.Event
			for _, text := range []string{"a", "b", "c"} {
				before = append(before, *publish(t, c, "lobby", text))
			}
			for i, ev := range recvN(t, sub, len(before)) {
				sameEvent(t, ev, before[i])
			}

			s.Restart(t)
			reset := recv(t, sub)
			if reset.Type != protocol.TypeReset || reset.Reason != protocol.ResetEpochChanged {
				t.Fatalf("after restart got %+v, want a reset (epoch_changed)", reset)
			}
			if reset.Epoch == before[0].Epoch || reset.Stream != "room/lobby" {
				t.Fatalf("reset %+v: want a new epoch of room/lobby", reset)
			}
			after := publish(t, c, "lobby", "on the new server")
			got := recv(t, sub)
			sameEvent(t, got, *after)
			if got.Epoch != reset.Epoch || got.Seq != reset.Seq+1 {
				t.Fatalf("first event after reset at %s:%d, reset at %s:%d", got.Epoch, got.Seq, reset.Epoch, reset.Seq)
			}
		})
	}
}

func TestPermanentErrorsEndTheSubscription(t *testing.T) {
	s := startPushd(t)
	c := newClient(t, s, "alice")
	cases := []struct {
		name   string
		stream client.Stream
		opts   client.SubscribeOptions
		code   string
	}{
		{"bad room auto", client.Room("no!"), client.SubscribeOptions{}, protocol.CodeInvalidName},
		{"bad room ws", client.Room("no!"), client.SubscribeOptions{Transport: client.TransportWebSocket}, protocol.CodeInvalidName},
		{"bad room sse", client.Room("no!"), client.SubscribeOptions{Transport: client.TransportSSE}, protocol.CodeInvalidName},
		{"bad room longpoll", client.Room("no!"), client.SubscribeOptions{Transport: client.TransportLongPoll}, protocol.CodeInvalidName},
		{"bad room poll", client.Room("no!"), client.SubscribeOptions{Transport: client.TransportPoll}, protocol.CodeInvalidName},
		{"bad user", client.Room("lobby"), client.SubscribeOptions{User: "a b"}, protocol.CodeInvalidName},
		{"no such task", client.Task("nope"), client.SubscribeOptions{}, protocol.CodeNotFound},
		{"bad cursor epoch", client.Room("lobby"), client.SubscribeOptions{Since: "0:x"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sub := subscribe(t, c, tc.stream, tc.opts)
			for range sub.Events() {
				t.Fatal("event on a refused subscription")
			}
			<-sub.Done()
			err := sub.Err()
			if err == nil {
				t.Fatal("Err() = nil")
			}
			if tc.code == "" {
				if !errors.Is(err, protocol.ErrBadCursor) {
					t.Fatalf("Err() = %v, want a bad cursor", err)
				}
				return
			}
			var pe *protocol.Error
			if !errors.As(err, &pe) || pe.Code != tc.code || pe.Status/100 != 4 {
				t.Fatalf("Err() = %v, want *protocol.Error %s", err, tc.code)
			}
		})
	}
}

func TestCancelledContextEndsTheSubscription(t *testing.T) {
	s := startPushd(t)
	c := newClient(t, s, "alice")
	ctx, cancel := context.WithCancel(context.Background())
	sub := c.Subscribe(ctx, client.Room("lobby"), client.SubscribeOptions{})
	waitState(t, sub, connectedWith(client.TransportWebSocket))
	cancel()
	<-sub.Done()
	if err := sub.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Err() = %v, want context.Canceled", err)
	}
	sub.Close() // still fine
}
