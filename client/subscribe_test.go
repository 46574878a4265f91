package client_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pushd/push/client"
	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// transportCase is one way of subscribing.
type transportCase struct {
	name string
	opts client.SubscribeOptions
	want client.Transport
}

// transportCases covers every transport, WebSocket with and without the
// batch subprotocol, and auto (which picks WebSocket on a plain server).
func transportCases() []transportCase {
	fast := func(o client.SubscribeOptions) client.SubscribeOptions {
		o.MinBackoff, o.MaxBackoff = 10*time.Millisecond, 200*time.Millisecond
		o.PollInterval = 20 * time.Millisecond
		o.LongPollWait = 2 * time.Second
		return o
	}
	return []transportCase{
		{"ws", fast(client.SubscribeOptions{Transport: client.TransportWebSocket}), client.TransportWebSocket},
		{"ws-batch", fast(client.SubscribeOptions{Transport: client.TransportWebSocket, Batch: true}), client.TransportWebSocket},
		{"sse", fast(client.SubscribeOptions{Transport: client.TransportSSE}), client.TransportSSE},
		{"longpoll", fast(client.SubscribeOptions{Transport: client.TransportLongPoll}), client.TransportLongPoll},
		{"poll", fast(client.SubscribeOptions{Transport: client.TransportPoll}), client.TransportPoll},
		{"auto", fast(client.SubscribeOptions{}), client.TransportWebSocket},
	}
}

// sameEvent fails unless got is want as the server stored it.
func sameEvent(t *testing.T, got, want protocol.Event) {
	t.Helper()
	if got.Seq != want.Seq || got.Epoch != want.Epoch || got.Stream != want.Stream || got.Type != want.Type ||
		!got.Time.Equal(want.Time) || got.User != want.User || got.Text != want.Text || got.Reason != want.Reason {
		t.Fatalf("event\n got %+v\nwant %+v", got, want)
	}
}

func TestEachTransportDeliversEventsInOrder(t *testing.T) {
	for _, tc := range transportCases() {
		t.Run(tc.name, func(t *testing.T) {
			s := startPushd(t)
			c := newClient(t, s, "alice")
			sub := subscribe(t, c, client.Room("lobby"), tc.opts)
			waitState(t, sub, connectedWith(tc.want))
			if got := sub.Transport(); got != tc.want {
				t.Fatalf("Transport() = %q, want %q", got, tc.want)
			}

			// Texts that SSE framing and JSON escaping must carry intact.
			texts := []string{"hi", "two\nlines", "crlf\r\nline", `quotes "and" \backslash`, "<b>&amp;</b>", "ünïcødé ✓", "data: not a field", ": not a comment"}
			for i := range 20 {
				texts = append(texts, fmt.Sprintf("m%02d", i))
			}
			var want []protocol.Event
			for _, text := range texts {
				want = append(want, *publish(t, c, "lobby", text))
			}
			got := recvN(t, sub, len(want))
			for i := range want {
				sameEvent(t, got[i], want[i])
				if got[i].Stream != "room/lobby" || got[i].Type != protocol.TypeMessage || got[i].User != "alice" {
					t.Fatalf("event %d: %+v", i, got[i])
				}
				if i > 0 && got[i].Seq != got[i-1].Seq+1 {
					t.Fatalf("event %d has seq %d after %d", i, got[i].Seq, got[i-1].Seq)
				}
			}
			cur, ok := sub.Cursor()
			if !ok || cur != want[len(want)-1].Cursor() {
				t.Fatalf("Cursor() = %v, %v; want %v", cur, ok, want[len(want)-1].Cursor())
			}
		})
	}
}

func TestSinceZeroStartsAtTheBeginning(t *testing.T) {
	s := startPushd(t)
	c := newClient(t, s, "alice")
	first := publish(t, c, "lobby", "before")
	sub := subscribe(t, c, client.Room("lobby"), client.SubscribeOptions{Since: "0"})
	sameEvent(t, recv(t, sub), *first)
	second := publish(t, c, "lobby", "after")
	sameEvent(t, recv(t, sub), *second)
}

func TestSinceCursorStartsAfterIt(t *testing.T) {
	s := startPushd(t)
	c := newClient(t, s, "alice")
	a := publish(t, c, "lobby", "a")
	b := publish(t, c, "lobby", "b")
	sub := subscribe(t, c, client.Room("lobby"), client.SubscribeOptions{Since: a.Cursor().String(), Transport: client.TransportSSE})
	sameEvent(t, recv(t, sub), *b)
}

func TestLiveEndSkipsOlderEvents(t *testing.T) {
	s := startPushd(t)
	c := newClient(t, s, "alice")
	publish(t, c, "lobby", "old")
	sub := subscribe(t, c, client.Room("lobby"), client.SubscribeOptions{})
	waitState(t, sub, connectedWith(client.TransportWebSocket))
	fresh := publish(t, c, "lobby", "new")
	sameEvent(t, recv(t, sub), *fresh)
}

func TestSubscriptionUserIsPresent(t *testing.T) {
	for _, tc := range transportCases() {
		t.Run(tc.name, func(t *testing.T) {
			s := pushdtest.Start(t, server.Config{PresenceGrace: 100 * time.Millisecond})
			c := newClient(t, s, "alice")
			opts := tc.opts
			opts.User = "bob"
			sub := c.Subscribe(t.Context(), client.Room("lobby"), opts)
			defer sub.Close()
			present := func(want bool) func() error {
				return func() error {
					users, err := c.Presence(t.Context(), "lobby")
					if err != nil {
						t.Fatalf("presence: %v", err)
					}
					if slices.Contains(users, "bob") != want {
						return fmt.Errorf("present: %q; want bob there: %v", users, want)
					}
					return nil
				}
			}
			waitFor(t, present(true))
			ev := recv(t, sub)
			if ev.Type != protocol.TypeLogin || ev.User != "bob" {
				t.Fatalf("first event %+v, want bob's login", ev)
			}
			sub.Close()
			waitFor(t, present(false))
		})
	}
}

func TestSlowReaderLosesNothing(t *testing.T) {
	s := startPushd(t)
	c := newClient(t, s, "alice")
	sub := subscribe(t, c, client.Room("lobby"), client.SubscribeOptions{Buffer: 1, Transport: client.TransportWebSocket})
	waitState(t, sub, connectedWith(client.TransportWebSocket))
	text := strings.Repeat("x", 1000)
	const total = 300
	for i := range total {
		s.PublishDirect(t, "lobby", "bot", fmt.Sprint(i, text))
	}
	for i, ev := range recvN(t, sub, total) {
		if ev.Text != fmt.Sprint(i, text) {
			t.Fatalf("event %d out of order", i)
		}
	}
}
