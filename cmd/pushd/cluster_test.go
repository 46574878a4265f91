package main

import (
	"fmt"
	"testing"

	"github.com/pushd/push/internal/natstest"
	"github.com/pushd/push/protocol"
)

// Two pushd processes on one NATS serve one room: what is published on
// either is read on both, and when one is killed the other still has
// every acknowledged event.
func TestTwoProcessesShareARoom(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two pushd processes")
	}
	ns := natstest.Start(t)
	a := startPushd(t, "--nats", ns.URL())
	b := startPushd(t, "--nats", ns.URL())
	var acked []protocol.Event
	for i := range 10 {
		node := a
		if i%2 == 1 {
			node = b
		}
		acked = append(acked, publish(t, node.url, "shared", fmt.Sprintf("m%d", i)))
	}
	a.kill(t)
	p := poll(t, b.url+"/v1/rooms/shared/events?since=0&wait=5s")
	if len(p.Events) != len(acked) {
		t.Fatalf("node b has %d events, want %d", len(p.Events), len(acked))
	}
	for i, ev := range p.Events {
		if ev.Seq != acked[i].Seq || ev.Text != acked[i].Text || ev.Epoch != acked[i].Epoch {
			t.Fatalf("event %d on b: %d %q, want %d %q as acknowledged", i, ev.Seq, ev.Text, acked[i].Seq, acked[i].Text)
		}
	}
}
