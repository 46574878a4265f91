package natsstore_test

// Presence across servers: pushd servers on one embedded NATS, each with
// its own connection, Store and Roster, behind its own HTTP listener.

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
