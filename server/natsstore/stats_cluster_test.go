package natsstore_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushd/push/internal/natstest"
	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
	"github.com/pushd/push/server/natsstore"
)

// With NATS, each node's figures come from every node, merged: the
// nodes, connections, rooms (subscribers and deliveries summed, events in
// counted once, presence across the cluster), the lagging subscribers of
// every node and the subscribers of a room; a node that stops drops out.
func TestStatsAcrossNodes(t *testing.T) {
	ns := natstest.Start(t)
	prefix := "t" + server.NewEpoch()
	cfg := server.Config{WriteTimeout: time.Minute, MaxTextBytes: 70 << 10, MaxBodyBytes: 1 << 20}
	// Each has its presence roster and task peers, which answer for its
	// stats.
	nodes := startCluster(t, ns.URL(), 2, natsstore.Options{Prefix: prefix}, withConfig(cfg), withRoster, withTasks(steadyTTL))
	a, b := nodes[0], nodes[1]

	// The lobby's subscribers read all along, so that each keeps taking
	// deliveries however long the rates below take to show.
	drain(t, a.Subscribe(t, pushdtest.WS, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{User: "ann"}))
	drain(t, b.Subscribe(t, pushdtest.SSE, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{User: "bob"}))
	drain(t, b.Subscribe(t, pushdtest.WS, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{User: "ann"}))
	stuck := pushdtest.StallSSE(t, b.URL, pushdtest.RoomPath("slow")+"?user=stuck")
	big := strings.Repeat("0123456789abcdef", 4096)
	var head uint64
	for i := range 100 {
		head = a.Publish(t, "slow", "carol", fmt.Sprint(i, big)).Seq
	}

	st := a.WaitStats(t, func(st protocol.Stats) error {
		var nodes []string
		for _, n := range st.Nodes {
			if n.Error != "" {
				return fmt.Errorf("node %s: %s", n.Node, n.Error)
			}
			nodes = append(nodes, n.Node)
		}
		if want := []string{a.TaskStore.Node(), b.TaskStore.Node()}; !slices.Equal(nodes, slices.Sorted(slices.Values(want))) {
			return fmt.Errorf("nodes %v; want %v", nodes, want)
		}
		if want := map[string]int{"ws": 2, "sse": 2, "longpoll": 0}; fmt.Sprint(st.Connections) != fmt.Sprint(want) {
			return fmt.Errorf("connections %v; want %v", st.Connections, want)
		}
		lobby, err := pushdtest.StreamStats(st, "room/lobby")
		if err != nil {
			return err
		}
		if lobby.Subscribers != 3 || lobby.Present != 2 {
			return fmt.Errorf("lobby %+v; want 3 subscribers and 2 present (ann on both nodes, bob)", lobby)
		}
		if len(st.Lagging) != 1 || st.Lagging[0].Node != b.TaskStore.Node() || st.Lagging[0].Addr != stuck.LocalAddr().String() {
			return fmt.Errorf("lagging %+v; want the stuck one of node %s", st.Lagging, b.TaskStore.Node())
		}
		slow, err := pushdtest.StreamStats(st, "room/slow")
		if err != nil {
			return err
		}
		if slow.Head != head || slow.MaxLag != st.Lagging[0].Lag {
			return fmt.Errorf("room/slow %+v; want head %d and the stuck one's lag %d", slow, head, st.Lagging[0].Lag)
		}
		return nil
	})
	for _, n := range st.Nodes {
		if n.Store.Probe != "nats round trip" || n.Store.ProbeMS <= 0 || n.Process.Goroutines == 0 {
			t.Errorf("node %s: store %+v, process %+v; want a NATS round trip timed", n.Node, n.Store, n.Process)
		}
	}

	// Rates: a room's events in are the room's, which every node sees;
	// its deliveries are every node's together.
	done := make(chan struct{})
	publishing := make(chan struct{})
	stopPublishing := sync.OnceFunc(func() {
		close(done)
		<-publishing
	})
	defer stopPublishing()
	go func() {
		defer close(publishing)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-tick.C:
				b.Publish(pushdtest.GoTB{TB: t}, "lobby", "bob", fmt.Sprint("m", i))
			}
		}
	}()
	a.WaitStats(t, func(st protocol.Stats) error {
		lobby, err := pushdtest.StreamStats(st, "room/lobby")
		if err != nil {
			return err
		}
		if lobby.EventsIn <= 0 || lobby.DeliveriesOut <= lobby.EventsIn {
			return fmt.Errorf("lobby %+v; want events in, and more deliveries out (3 subscribers)", lobby)
		}
		for _, n := range st.Nodes {
			if n.DeliveriesOut <= 0 || (n.Node == b.TaskStore.Node()) != (n.EventsIn > 0) {
				return fmt.Errorf("node %s: %.1f events in, %.1f deliveries out; want deliveries on both, events in on the publishing one", n.Node, n.EventsIn, n.DeliveriesOut)
			}
		}
		if want := st.Nodes[0].DeliveriesOut + st.Nodes[1].DeliveriesOut; st.DeliveriesOut != want {
			return fmt.Errorf("%.1f deliveries out; want the nodes' sum %.1f", st.DeliveriesOut, want)
		}
		return nil
	})
	stopPublishing()

	var list protocol.SubscriberList
	b.Expect(t, http.MethodGet, "/v1/admin/stats/subscribers?stream=room/lobby", "", http.StatusOK, &list)
	var where []string
	for _, s := range list.Subscribers {
		where = append(where, s.Node+" "+s.Transport+" "+s.User)
	}
	slices.Sort(where)
	want := []string{a.TaskStore.Node() + " ws ann", b.TaskStore.Node() + " sse bob", b.TaskStore.Node() + " ws ann"}
	slices.Sort(want)
	if list.Total != 3 || !slices.Equal(where, want) || len(list.Missing) != 0 {
		t.Errorf("subscribers of the lobby from node b: %+v; want %v", list, want)
	}

	stuck.Close()
	if err := b.Srv().Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	a.WaitStats(t, func(st protocol.Stats) error {
		if len(st.Nodes) != 1 || st.Nodes[0].Node != a.TaskStore.Node() {
			return fmt.Errorf("nodes %+v; want node %s alone once the other has stopped", st.Nodes, a.TaskStore.Node())
		}
		return nil
	})
}

// drain reads sub's events until the test ends, and waits for its reader
// then.
func drain(t *testing.T, sub *pushdtest.Subscriber) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, err := sub.Read(ctx); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}
