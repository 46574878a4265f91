package main

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pushd/push/internal/natstest"
	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
)

// startPair starts two pushd processes on one embedded NATS; -short skips
// the test.
func startPair(t *testing.T) (a, b *pushdtest.Process) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts two pushd processes")
	}
	ns := natstest.Start(t)
	return startPushd(t, "--nats", ns.URL()), startPushd(t, "--nats", ns.URL())
}

// Two pushd processes on one NATS serve one room: what is published on
// either is read on both, and when one is killed the other still has
// every acknowledged event.
func TestTwoProcessesShareARoom(t *testing.T) {
	a, b := startPair(t)
	var acked []protocol.Event
	for i := range 10 {
		node := a
		if i%2 == 1 {
			node = b
		}
		acked = append(acked, node.Publish(t, "shared", "tester", fmt.Sprintf("m%d", i)))
	}
	a.Kill(t)
	evs, _ := b.Poll(t, "/v1/rooms/shared/events", "since=0&wait=5s")
	if len(evs) != len(acked) {
		t.Fatalf("node b has %d events, want %d", len(evs), len(acked))
	}
	for i, ev := range evs {
		if ev.Seq != acked[i].Seq || ev.Text != acked[i].Text || ev.Epoch != acked[i].Epoch {
			t.Fatalf("event %d on b: %d %q, want %d %q as acknowledged", i, ev.Seq, ev.Text, acked[i].Seq, acked[i].Text)
		}
	}
}

// A task started on one process is seen and cancelled through the other,
// and a user connected to both is present once on each.
func TestTwoProcessesShareTasksAndPresence(t *testing.T) {
	a, b := startPair(t)

	task := a.StartTask(t, `{"kind":"demo","name":"long","total":1000,"interval":"1s"}`)
	if got := b.Task(t, task.ID); got.ID != task.ID || got.State.Final() {
		t.Fatalf("task on b: %+v; want %s, live", got, task.ID)
	}
	b.CancelTask(t, task.ID)
	testwait.Until(t, 10*time.Second, 50*time.Millisecond, func() error {
		if got := a.Task(t, task.ID); got.State != protocol.TaskCancelled {
			return fmt.Errorf("task on a after cancel from b: %s", got.State)
		}
		return nil
	})

	// Long polls hold the user in the room while they wait.
	var polls sync.WaitGroup
	for _, p := range []*pushdtest.Process{a, b} {
		polls.Go(func() {
			p.Get(pushdtest.GoTB{TB: t}, "/v1/rooms/meet/events?user=ann&wait=5s")
		})
	}
	testwait.Until(t, 10*time.Second, 50*time.Millisecond, func() error {
		if got := b.Presence(t, "meet"); len(got) != 1 || got[0] != "ann" {
			return fmt.Errorf("presence on b: %v; want [ann]", got)
		}
		return nil
	})
	// Each long poll joined before it waited, and ends with the login or
	// its wait: once both are over, every login there will be is in the
	// log.
	polls.Wait()
	evs, _ := a.Poll(t, "/v1/rooms/meet/events", "since=0&wait=5s")
	logins := 0
	for _, ev := range evs {
		if ev.Type == protocol.TypeLogin {
			logins++
		}
	}
	if logins != 1 {
		t.Fatalf("%d logins for one user on two servers; want 1: %s", logins, pushdtest.Summary(evs))
	}
}
