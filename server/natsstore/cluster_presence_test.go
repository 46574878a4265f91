package natsstore_test

// Presence across servers, and the stats that show who is where: pushd
// servers on one embedded NATS, each with its own connection, Store and
// Roster (and for the stats, task peers), behind its own HTTP listener.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushd/push/internal/natstest"
	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
	"github.com/pushd/push/server/natsstore"
)

// presenceCluster starts n servers that share presence through their
// rosters (named node0, node1, ...), with a short grace period.
func presenceCluster(t *testing.T, ns *natstest.Server, n int) ([]*clusterNode, []*natsstore.Roster) {
	t.Helper()
	nodes := make([]*clusterNode, n)
	rosters := make([]*natsstore.Roster, n)
	for i := range n {
		nodes[i], rosters[i] = presenceNode(t, ns.URL(), i)
	}
	return nodes, rosters
}

// presenceNode starts server i of a presence cluster on the NATS at url.
func presenceNode(t *testing.T, url string, i int) (*clusterNode, *natsstore.Roster) {
	t.Helper()
	node := startClusterNode(t, url, i, natsstore.Options{Timeout: testTimeout}, withRoster, func(_ *testing.T, _ int, _ *natsstore.Store, cfg *server.Config) {
		cfg.PresenceGrace = 100 * time.Millisecond
	})
	return node, node.Roster
}

// serversOf returns the servers the roster lists for user in room, as
// stored in NATS.
func serversOf(t *testing.T, n *clusterNode, r *natsstore.Roster, room, user string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	kv, err := n.Store.JetStream().KeyValue(ctx, r.Bucket())
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, "r."+room+"."+user)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Servers []string `json:"servers"`
	}
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		t.Fatalf("roster entry %s: %v", e.Value(), err)
	}
	return v.Servers
}

// presenceLog returns the login and logout events of evs, in order, as
// "login alice".
func presenceLog(evs []protocol.Event) []string {
	var out []string
	for _, ev := range evs {
		if ev.Type == protocol.TypeLogin || ev.Type == protocol.TypeLogout {
			out = append(out, fmt.Sprintf("%s %s", ev.Type, ev.User))
		}
	}
	return out
}

// waitPresence waits until GET presence answers want on every node.
func waitPresence(t *testing.T, room string, want []string, nodes ...*clusterNode) {
	t.Helper()
	waitAll(t, "node", nodes, want, func(n *clusterNode) ([]string, error) {
		status, got := n.presence(t, room)
		if status != http.StatusOK {
			return nil, fmt.Errorf("presence %d", status)
		}
		return got, nil
	})
}

// waitPresenceLog waits until every node's room stream has the login and
// logout events want, and no others.
func waitPresenceLog(t *testing.T, room string, want []string, nodes ...*clusterNode) {
	t.Helper()
	waitAll(t, "node", nodes, want, func(n *clusterNode) ([]string, error) {
		return presenceLog(n.History(t, pushdtest.RoomPath(room))), nil
	})
}

// A user connected to two servers logs in once and logs out once, when the
// last connection, on either server, has been gone for the grace period.
func TestClusterPresenceOneLoginOneLogout(t *testing.T) {
	ns := natstest.Start(t)
	nodes, rosters := presenceCluster(t, ns, 2)
	a, b := nodes[0], nodes[1]

	dropA := a.connect(t, "lobby", "alice")
	dropB := b.connect(t, "lobby", "alice")
	b.connect(t, "lobby", "bob")
	waitPresence(t, "lobby", []string{"alice", "bob"}, a, b)
	waitPresenceLog(t, "lobby", []string{"login alice", "login bob"}, a, b)

	// alice leaves a; b still has her.
	dropA()
	testwait.Until(t, waitTimeout, 10*time.Millisecond, func() error {
		servers := serversOf(t, a, rosters[0], "lobby", "alice")
		if len(servers) != 1 || !strings.HasPrefix(servers[0], "node1=") {
			return fmt.Errorf("the roster has alice on %q; want node1 alone", servers)
		}
		return nil
	})
	// a has let her go (after the grace period) without a logout.
	waitPresence(t, "lobby", []string{"alice", "bob"}, a, b)
	waitPresenceLog(t, "lobby", []string{"login alice", "login bob"}, a, b)

	dropB()
	waitPresence(t, "lobby", []string{"bob"}, a, b)
	waitPresenceLog(t, "lobby", []string{"login alice", "login bob", "logout alice"}, a, b)

	// Back, on a: a new login.
	a.connect(t, "lobby", "alice")
	waitPresence(t, "lobby", []string{"alice", "bob"}, a, b)
	waitPresenceLog(t, "lobby", []string{"login alice", "login bob", "logout alice", "login alice"}, a, b)
}

// Users who connect to two servers at the same moment log in once each,
// and log out once each when they leave both at the same moment.
func TestClusterPresenceSimultaneousJoins(t *testing.T) {
	ns := natstest.Start(t)
	nodes, _ := presenceCluster(t, ns, 2)
	var users, logins, logouts []string
	for i := range 10 {
		u := fmt.Sprintf("u%d", i)
		users = append(users, u)
		logins = append(logins, "login "+u)
		logouts = append(logouts, "logout "+u)
	}
	drops := make([][]func(), len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		drops[i] = make([]func(), len(users))
		for j, u := range users {
			wg.Go(func() { drops[i][j] = n.connect(t, "lobby", u) })
		}
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	waitPresence(t, "lobby", users, nodes...)
	sortedLog := func(evs []protocol.Event) []string { return slices.Sorted(slices.Values(presenceLog(evs))) }
	waitAll(t, "node", nodes, logins, func(n *clusterNode) ([]string, error) {
		return sortedLog(n.History(t, pushdtest.RoomPath("lobby"))), nil
	})

	for _, ds := range drops {
		for _, d := range ds {
			wg.Go(d)
		}
	}
	wg.Wait()
	waitPresence(t, "lobby", nil, nodes...)
	want := slices.Sorted(slices.Values(append(logins, logouts...)))
	waitAll(t, "node", nodes, want, func(n *clusterNode) ([]string, error) {
		return sortedLog(n.History(t, pushdtest.RoomPath("lobby"))), nil
	})
}

// The users of a server that goes away without a word are logged out by
// the others, once, after the roster's TTL; a user another server has
// too stays.
func TestClusterPresenceServerGoesAway(t *testing.T) {
	ns := natstest.Start(t)
	nodes, _ := presenceCluster(t, ns, 3)
	a, b, c := nodes[0], nodes[1], nodes[2]
	a.connect(t, "lobby", "alice")
	a.connect(t, "lobby", "bob")
	b.connect(t, "lobby", "bob")
	waitPresence(t, "lobby", []string{"alice", "bob"}, a, b, c)

	a.stop(t)
	waitPresence(t, "lobby", []string{"bob"}, b, c)
	waitPresenceLog(t, "lobby", []string{"login alice", "login bob", "logout alice"}, b, c)
}

// While NATS is away presence answers 503; when it is back, the users
// are still there.
func TestClusterPresenceNATSOutage(t *testing.T) {
	ns := natstest.Start(t)
	nodes, _ := presenceCluster(t, ns, 2)
	a, b := nodes[0], nodes[1]
	a.connect(t, "lobby", "alice")
	waitPresence(t, "lobby", []string{"alice"}, a, b)

	ns.Stop()
	testwait.Until(t, waitTimeout, 10*time.Millisecond, func() error {
		for i, n := range nodes {
			if status, _ := n.presence(t, "lobby"); status != http.StatusServiceUnavailable {
				return fmt.Errorf("node %d: presence %d; want 503", i, status)
			}
		}
		return nil
	})
	ns.Restart()
	waitPresence(t, "lobby", []string{"alice"}, a, b)
	b.connect(t, "lobby", "alice")
	b.connect(t, "lobby", "bob")
	waitPresence(t, "lobby", []string{"alice", "bob"}, a, b)
	waitPresenceLog(t, "lobby", []string{"login alice", "login bob"}, a, b)
}

// A login that cannot be published is taken back out of the roster; if
// that fails too, the roster takes the user out later, and no logout goes
// out, since no login did.
func TestClusterPresenceFailedLoginOwesNoLogout(t *testing.T) {
	ns := natstest.Start(t)
	px := startNATSProxy(t, ns.URL())
	a, ra := presenceNode(t, px.URL(), 0)
	b, _ := presenceNode(t, ns.URL(), 1)
	// The room's events subject under the default prefix, its name
	// escaped as the store does.
	events := natsstore.DefaultOptions().Prefix + ".events." + strings.NewReplacer(".", "=2E", "/", "=2F").Replace(protocol.RoomStream("lobby"))
	key := "$KV." + ra.Bucket() + ".r.lobby."

	login := px.loseRequest(events, `"type":"login"`)
	withdraw := px.loseRequest(key+"alice", purge)
	if sub, err := a.TrySubscribe(pushdtest.WS, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{User: "alice"}); err == nil {
		sub.Close()
		t.Fatal("alice connected, though her login was lost")
	}
	lost(t, "alice's login", login)
	lost(t, "the withdrawal of alice", withdraw)
	testwait.Until(t, waitTimeout, 10*time.Millisecond, func() error {
		if s := serversOf(t, b, ra, "lobby", "alice"); len(s) != 0 {
			return fmt.Errorf("the roster still has alice on %q", s)
		}
		return nil
	})

	// bob comes and goes, and his departure, lost on the way, is retried
	// after alice's: by then a logout of alice would be out.
	drop := a.connect(t, "lobby", "bob")
	depart := px.loseRequest(key+"bob", purge)
	drop()
	lost(t, "the departure of bob", depart)
	waitPresenceLog(t, "lobby", []string{"login bob", "logout bob"}, a, b)
	waitPresence(t, "lobby", nil, a, b)
}

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
