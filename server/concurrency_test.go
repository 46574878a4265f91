package server_test

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

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
