package natsstore

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/pushd/push/client"
	"github.com/pushd/push/internal/natstest"
	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
)

// TestPublishExactlyOnceAcrossNodes: a client publishes through a proxy
// that spreads its requests over two nodes, loses the answer to every
// third, and, half way, loses one node for good. Every message is in the
// room once, in order: a retry with the same id lands on the other node,
// and JetStream's de-duplication stores it once.
func TestPublishExactlyOnceAcrossNodes(t *testing.T) {
	ns := natstest.Start(t)
	a, b := startNode(t, ns.URL()), startNode(t, ns.URL())
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
	sub := a.cl.Subscribe(ctx, client.Room(room), client.SubscribeOptions{Since: "0", MaxRetries: 3})
	defer sub.Close()
	checkMessages(t, collect(t, sub, total), 0, want)
	// Nothing more than those: the room's end is the last of them.
	cur, err := a.cl.Cursor(ctx, client.Room(room))
	if err != nil || cur.Seq != total {
		t.Fatalf("the room ends at %+v (%v); want seq %d", cur, err, total)
	}
}

// TestRepeatOnAnotherNodeAnswersTheFirst: a message id used on one node
// is known on the other: 200 with the first event, or 409 for other text.
func TestRepeatOnAnotherNodeAnswersTheFirst(t *testing.T) {
	ns := natstest.Start(t)
	a, b := startNode(t, ns.URL()), startNode(t, ns.URL())
	ctx := context.Background()
	first, err := a.cl.Publish(ctx, "r", "hello", client.WithID("shared-1"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := b.cl.Publish(ctx, "r", "hello", client.WithID("shared-1"))
	if err != nil || again.Seq != first.Seq || again.Epoch != first.Epoch || !again.Time.Equal(first.Time) {
		t.Fatalf("repeat on the other node: %+v, %v; want the first %+v", again, err, first)
	}
	_, err = b.cl.Publish(ctx, "r", "other", client.WithID("shared-1"))
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Status != http.StatusConflict {
		t.Fatalf("other text under the same id on the other node: %v; want 409", err)
	}
}
