package natsstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pushd/push/internal/natstest"
	"github.com/pushd/push/internal/testlog"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/server"
	"github.com/pushd/push/server/natsstore"
)

// Short enough that sweeps happen within a test, long enough that a busy
// machine running the race detector does not miss a refresh by a TTL: a
// refresh that NATS never acknowledges (one sent as NATS went away) takes
// the store's timeout.
const (
	testRefresh = 100 * time.Millisecond
	testTTL     = 3 * time.Second
	testTimeout = time.Second
)

// testRoster is a roster on its own NATS connection, as one server has it.
type testRoster struct {
	*natsstore.Roster
	store *natsstore.Store

	mu      sync.Mutex
	gone    []string // "room user", in the order Run reported them
	cancel  context.CancelFunc
	stopped chan struct{}
}

// startRoster opens a store and a roster named node on the NATS at url and
// runs the roster until stopRun or the end of the test.
func startRoster(t *testing.T, url, node string) *testRoster {
	t.Helper()
	tr := openRoster(t, url, node)
	tr.run(t)
	return tr
}

// openRoster is startRoster without Run: nothing refreshes, retries or
// sweeps until run.
func openRoster(t *testing.T, url, node string) *testRoster {
	t.Helper()
	st := open(t, url, natsstore.Options{Timeout: testTimeout})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	r, err := st.Roster(ctx, natsstore.RosterOptions{Node: node, Refresh: testRefresh, TTL: testTTL, Logger: testlog.Logger(t, slog.LevelDebug)})
	if err != nil {
		t.Fatal(err)
	}
	return &testRoster{Roster: r, store: st}
}

// run starts Run; it ends with stopRun or the test.
func (tr *testRoster) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	tr.cancel, tr.stopped = cancel, make(chan struct{})
	stopped := tr.stopped
	go func() {
		defer close(stopped)
		tr.Run(ctx, func(room, user string) {
			tr.mu.Lock()
			defer tr.mu.Unlock()
			tr.gone = append(tr.gone, room+" "+user)
		})
	}()
	t.Cleanup(tr.stopRun)
}

// stopRun ends Run and waits for it: the roster stops refreshing, as a
// server that hangs or dies does.
func (tr *testRoster) stopRun() {
	tr.cancel()
	<-tr.stopped
}

func (tr *testRoster) goneList() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.gone)
}

// noneGone fails the test if any of rosters reported someone gone, as
// none may while no server vanished.
func noneGone(t *testing.T, rosters ...*testRoster) {
	t.Helper()
	for i, r := range rosters {
		if g := r.goneList(); len(g) != 0 {
			t.Fatalf("roster %d of %d reported %q gone; no server vanished", i+1, len(rosters), g)
		}
	}
}

// wantFirst has user arrive in room on r and fails the test with
// failure unless the arrival is first exactly when first says.
func wantFirst(t *testing.T, r *testRoster, room, user string, first bool, failure string) {
	t.Helper()
	if arrive(t, r, room, user) != first {
		t.Fatal(failure)
	}
}

// wantLast has user depart from room on r and fails the test with
// failure unless the departure is last exactly when last says.
func wantLast(t *testing.T, r *testRoster, room, user string, last bool, failure string) {
	t.Helper()
	if depart(t, r, room, user) != last {
		t.Fatal(failure)
	}
}

// arrive has user arrive in room on r and returns whether it was first.
func arrive(t *testing.T, r *testRoster, room, user string) bool {
	t.Helper()
	return change(t, "arrival", r.Arrive, room, user)
}

// depart has user depart from room on r and returns whether it was last.
func depart(t *testing.T, r *testRoster, room, user string) bool {
	t.Helper()
	return change(t, "departure", r.Depart, room, user)
}

// change calls op (Arrive or Depart: what is an arrival or a
// departure) for user and room, failing the test on an error.
func change(t *testing.T, what string, op func(context.Context, string, string) (bool, error), room, user string) bool {
	t.Helper()
	ok, err := op(context.Background(), room, user)
	if err != nil {
		t.Fatalf("%s of %s in %s: %v", what, user, room, err)
	}
	return ok
}

// waitUsers waits until every roster lists want in room.
func waitUsers(t *testing.T, room string, want []string, rosters ...*testRoster) {
	t.Helper()
	waitAll(t, "roster", rosters, want, func(r *testRoster) ([]string, error) { return r.Users(context.Background(), room) })
}

// waitAll waits until get gives want for every one of items (what names
// them in the failure).
func waitAll[T any](t *testing.T, what string, items []T, want []string, get func(T) ([]string, error)) {
	t.Helper()
	testwait.Until(t, waitTimeout, 10*time.Millisecond, func() error {
		for i, it := range items {
			got, err := get(it)
			if err != nil {
				return fmt.Errorf("%s %d: %v", what, i, err)
			}
			if !slices.Equal(got, want) {
				return fmt.Errorf("%s %d: %q; want %q", what, i, got, want)
			}
		}
		return nil
	})
}

// The first arrival on any server is first, the last departure last;
// names with dots stay apart from the names they extend.
func TestRosterFirstAndLast(t *testing.T) {
	ns := natstest.Start(t)
	a, b := startRoster(t, ns.URL(), "a"), startRoster(t, ns.URL(), "b")

	wantFirst(t, a, "dev.ops", "carol.b", true, "the first arrival anywhere is not first")
	wantFirst(t, b, "dev.ops", "carol.b", false, "an arrival on a second server is first")
	wantFirst(t, a, "dev.ops", "carol.b", false, "a repeated arrival is first")
	wantFirst(t, b, "dev", "ops.carol.b", true, "a user of another room is not first")
	waitUsers(t, "dev.ops", []string{"carol.b"}, a, b)
	waitUsers(t, "dev", []string{"ops.carol.b"}, a, b)
	waitUsers(t, "ops", nil, a, b)

	wantLast(t, a, "dev.ops", "carol.b", false, "a departure while another server has the user is last")
	waitUsers(t, "dev.ops", []string{"carol.b"}, a, b)
	wantLast(t, a, "dev.ops", "carol.b", false, "a repeated departure is last")
	wantLast(t, b, "dev.ops", "carol.b", true, "the departure from the last server is not last")
	waitUsers(t, "dev.ops", nil, a, b)
	waitUsers(t, "dev", []string{"ops.carol.b"}, a, b)

	// Back again: first again.
	wantFirst(t, b, "dev.ops", "carol.b", true, "an arrival after the last departure is not first")
	waitUsers(t, "dev.ops", []string{"carol.b"}, a, b)
	noneGone(t, a, b)
}

// Servers that let the same user in at the same moment agree that one of
// them was first; leaving at the same moment, that one was last.
func TestRosterConcurrentArrivalsOneFirst(t *testing.T) {
	ns := natstest.Start(t)
	rosters := []*testRoster{startRoster(t, ns.URL(), "a"), startRoster(t, ns.URL(), "b"), startRoster(t, ns.URL(), "c")}
	race := func(user string, op func(r *testRoster) (bool, error)) int {
		var wg sync.WaitGroup
		start := make(chan struct{})
		results := make([]bool, len(rosters))
		for i, r := range rosters {
			wg.Go(func() {
				<-start
				ok, err := op(r)
				if err != nil {
					t.Errorf("roster %d, %s: %v", i, user, err)
				}
				results[i] = ok
			})
		}
		close(start)
		wg.Wait()
		n := 0
		for _, ok := range results {
			if ok {
				n++
			}
		}
		return n
	}
	for i := range 20 {
		user := fmt.Sprintf("u%d", i)
		if n := race(user, func(r *testRoster) (bool, error) { return r.Arrive(context.Background(), "lobby", user) }); n != 1 {
			t.Fatalf("%s: %d servers were first; want 1", user, n)
		}
		if n := race(user, func(r *testRoster) (bool, error) { return r.Depart(context.Background(), "lobby", user) }); n != 1 {
			t.Fatalf("%s: %d servers were last; want 1", user, n)
		}
	}
	waitUsers(t, "lobby", nil, rosters...)
}

// A server that stops refreshing is swept after the TTL: its users that no
// other server has are reported gone, once across all servers; users that
// another server has stay. When it comes back, it writes its entries
// again.
func TestRosterSweepsServerThatStopsRefreshing(t *testing.T) {
	ns := natstest.Start(t)
	a, b, c := startRoster(t, ns.URL(), "a"), startRoster(t, ns.URL(), "b"), startRoster(t, ns.URL(), "c")
	arrive(t, c, "lobby", "alice")
	arrive(t, c, "lobby", "bob")
	arrive(t, a, "lobby", "bob")
	waitUsers(t, "lobby", []string{"alice", "bob"}, a, b, c)

	c.stopRun()
	gone := func() []string { return append(a.goneList(), b.goneList()...) }
	testwait.Until(t, waitTimeout, 10*time.Millisecond, func() error {
		if g := gone(); len(g) == 0 {
			return errors.New("no one reported alice gone")
		}
		return nil
	})
	waitUsers(t, "lobby", []string{"bob"}, a, b)
	noneGone(t, c) // the stale server

	// c comes back: its users are listed again.
	c.run(t)
	waitUsers(t, "lobby", []string{"alice", "bob"}, a, b, c)
	wantLast(t, c, "lobby", "alice", true, "c's departure of alice, whom only c has, is not last")
	wantLast(t, c, "lobby", "bob", false, "c's departure of bob, whom a has too, is last")
	waitUsers(t, "lobby", []string{"bob"}, a, b, c)
	// Many sweeps later, alice was still reported gone once.
	if g := gone(); !slices.Equal(g, []string{"lobby alice"}) {
		t.Fatalf("gone reported %q; want alice once", g)
	}
}

// While NATS is away every call fails with server.ErrUnavailable; when it
// is back the roster works again, with what it had.
func TestRosterNATSOutage(t *testing.T) {
	ns := natstest.Start(t)
	a, b := startRoster(t, ns.URL(), "a"), startRoster(t, ns.URL(), "b")
	arrive(t, a, "lobby", "alice")
	arrive(t, a, "lobby", "carol")
	waitUsers(t, "lobby", []string{"alice", "carol"}, a, b)

	ns.Stop()
	testwait.Until(t, waitTimeout, 10*time.Millisecond, func() error {
		_, err := a.Users(context.Background(), "lobby")
		if !errors.Is(err, server.ErrUnavailable) {
			return fmt.Errorf("Users during the outage: %v; want ErrUnavailable", err)
		}
		return nil
	})
	if _, err := b.Arrive(context.Background(), "lobby", "bob"); !errors.Is(err, server.ErrUnavailable) {
		t.Fatalf("Arrive during the outage: %v; want ErrUnavailable", err)
	}
	// carol leaves during the outage: the roster takes her out once NATS
	// is back, and reports her gone then, since a had her alone.
	if _, err := a.Depart(context.Background(), "lobby", "carol"); !errors.Is(err, server.ErrUnavailable) {
		t.Fatalf("Depart during the outage: %v; want ErrUnavailable", err)
	}

	ns.Restart()
	testwait.Until(t, waitTimeout, 50*time.Millisecond, func() error {
		first, err := b.Arrive(context.Background(), "lobby", "bob")
		if err != nil {
			return fmt.Errorf("Arrive after the outage: %v", err)
		}
		if !first {
			t.Fatal("bob's arrival after the outage is not first")
		}
		return nil
	})
	wantFirst(t, b, "lobby", "alice", false, "alice, whom a had before the outage, is first on b after it")
	waitUsers(t, "lobby", []string{"alice", "bob"}, a, b)
	testwait.Until(t, waitTimeout, 10*time.Millisecond, func() error {
		if g := a.goneList(); !slices.Equal(g, []string{"lobby carol"}) {
			return fmt.Errorf("a reported %q gone; want carol", g)
		}
		return nil
	})
	noneGone(t, b)
}

// If NATS loses the roster (here: its bucket is deleted), every running
// server writes its entries again, and no one is reported gone.
func TestRosterWritesEntriesAgainAfterLoss(t *testing.T) {
	ns := natstest.Start(t)
	a, b := startRoster(t, ns.URL(), "a"), startRoster(t, ns.URL(), "b")
	arrive(t, a, "lobby", "alice")
	arrive(t, b, "lobby", "bob")
	arrive(t, b, "lobby", "alice")
	waitUsers(t, "lobby", []string{"alice", "bob"}, a, b)

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := a.store.JetStream().DeleteKeyValue(ctx, a.Bucket()); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, waitTimeout, 20*time.Millisecond, func() error {
		kv, err := a.store.JetStream().KeyValue(ctx, a.Bucket())
		if err != nil {
			return err
		}
		keys, err := kv.Keys(ctx)
		if err != nil {
			return err
		}
		// Two heartbeats and two room keys, alice's with both servers
		// again (each writes itself back on its own).
		if len(keys) != 4 {
			return fmt.Errorf("keys %q", keys)
		}
		e, err := kv.Get(ctx, "r.lobby.alice")
		if err != nil {
			return err
		}
		var v struct{ Servers []string }
		if err := json.Unmarshal(e.Value(), &v); err != nil || len(v.Servers) != 2 {
			return fmt.Errorf("alice's key holds %s (%v); want both servers", e.Value(), err)
		}
		return nil
	})
	waitUsers(t, "lobby", []string{"alice", "bob"}, a, b)
	wantLast(t, a, "lobby", "alice", false, "a's departure of alice, whom b has too, is last")
	wantLast(t, b, "lobby", "alice", true, "b's departure of alice is not last")
	waitUsers(t, "lobby", []string{"bob"}, a, b)
	noneGone(t, a, b)
}

func TestRosterOptions(t *testing.T) {
	ns := natstest.Start(t)
	st := open(t, ns.URL(), natsstore.Options{})
	ctx := context.Background()
	for _, o := range []natsstore.RosterOptions{
		{Node: "a.b"},
		{Node: "a b"},
		{Node: "a=b"},
		{Refresh: time.Second, TTL: 1500 * time.Millisecond},
	} {
		if _, err := st.Roster(ctx, o); err == nil {
			t.Errorf("Roster(%+v) succeeded; want an error", o)
		}
	}
	if _, err := st.Roster(ctx, natsstore.RosterOptions{}); err != nil {
		t.Fatalf("Roster with defaults: %v", err)
	}
}

// key is the subject of a room key of the roster's bucket, as a write to
// it is published.
func (tr *testRoster) key(room, user string) string {
	return "$KV." + tr.Bucket() + ".r." + room + "." + user
}

// purge is what the publish of a key's removal holds.
const purge = "KV-Operation: PURGE"

// lost waits for a loss the proxy was told of.
func lost(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	testwait.Recv(t, waitTimeout, ch, "loss of "+what+" by the proxy")
}

// waitGone waits until the roster has reported want gone, and no others.
func waitGone(t *testing.T, r *testRoster, want ...string) {
	t.Helper()
	testwait.Until(t, waitTimeout, 10*time.Millisecond, func() error {
		if g := r.goneList(); !slices.Equal(g, want) {
			return fmt.Errorf("gone reported %q; want %q", g, want)
		}
		return nil
	})
}

// startLossyPair starts, on a new embedded NATS, roster a, whose
// connection goes through a proxy that can lose its writes, and roster b,
// whose connection does not.
func startLossyPair(t *testing.T) (px *natsProxy, a, b *testRoster) {
	t.Helper()
	ns := natstest.Start(t)
	px = startNATSProxy(t, ns.URL())
	return px, startRoster(t, px.URL(), "a"), startRoster(t, ns.URL(), "b")
}

// departLost makes a Depart whose request (or, with answer, its answer)
// the proxy loses, as fails then.
func departLost(t *testing.T, px *natsProxy, r *testRoster, room, user string, answer bool) {
	t.Helper()
	lose := px.loseRequest
	if answer {
		lose = px.loseAnswer
	}
	ch := lose(r.key(room, user), purge)
	if _, err := r.Depart(context.Background(), room, user); !errors.Is(err, server.ErrUnavailable) {
		t.Fatalf("depart %s whose write is lost: %v; want ErrUnavailable", user, err)
	}
	lost(t, "the departure of "+user, ch)
}

// A departure whose removal lands but whose answer is lost still owes the
// logout: Run announces it once, when it finds the key gone.
func TestRosterDepartWithLostAnswer(t *testing.T) {
	px, a, b := startLossyPair(t)
	arrive(t, a, "lobby", "alice")
	arrive(t, a, "lobby", "bob")

	departLost(t, px, a, "lobby", "alice", true)
	waitUsers(t, "lobby", []string{"bob"}, a, b) // the removal landed
	waitGone(t, a, "lobby alice")
	// bob's departure, lost on the way, is retried after alice's: by then
	// alice was reported gone once, and no more.
	departLost(t, px, a, "lobby", "bob", false)
	waitGone(t, a, "lobby alice", "lobby bob")
	waitUsers(t, "lobby", nil, a, b)
	noneGone(t, b)
}

// A sweep whose removal of a vanished server's last user lands but whose
// answer is lost still reports the user gone, once.
func TestRosterSweepWithLostAnswer(t *testing.T) {
	px, a, b := startLossyPair(t)
	arrive(t, b, "lobby", "alice")
	arrive(t, a, "lobby", "bob")
	waitUsers(t, "lobby", []string{"alice", "bob"}, a, b)

	// b vanishes; a is the only server left to sweep it.
	ch := px.loseAnswer(a.key("lobby", "alice"), purge)
	b.stopRun()
	lost(t, "the sweep of alice", ch)
	waitUsers(t, "lobby", []string{"bob"}, a)
	waitGone(t, a, "lobby alice")
	// bob's departure, lost on the way, is retried after: by then alice
	// was reported gone once, and no more.
	departLost(t, px, a, "lobby", "bob", false)
	waitGone(t, a, "lobby alice", "lobby bob")
}

// An arrival taken back because its login was never published owes no
// logout, even if taking it out fails at first.
func TestRosterWithdrawOwesNoLogout(t *testing.T) {
	px, a, b := startLossyPair(t)
	wantFirst(t, a, "lobby", "alice", true, "alice's arrival is not first")
	arrive(t, a, "lobby", "bob")
	for _, answer := range []bool{false, true} {
		ch := px.loseRequest(a.key("lobby", "alice"), purge)
		if answer {
			ch = px.loseAnswer(a.key("lobby", "alice"), purge)
		}
		if err := a.Withdraw(context.Background(), "lobby", "alice"); !errors.Is(err, server.ErrUnavailable) {
			t.Fatalf("withdraw whose write is lost: %v; want ErrUnavailable", err)
		}
		lost(t, "the withdrawal of alice", ch)
		waitUsers(t, "lobby", []string{"bob"}, a, b)
		if answer {
			break
		}
		arrive(t, a, "lobby", "alice")
	}
	// bob's departure is retried after alice's withdrawal: only bob is
	// reported gone.
	departLost(t, px, a, "lobby", "bob", false)
	waitGone(t, a, "lobby bob")
}

// An arrival while this server's departure of the user is still being
// taken out: after a Withdraw it is the login (no login went out); after
// a Depart, not (the logout has not gone out either), even if the
// departure's removal landed unanswered.
func TestRosterArriveWhileDepartureUnfinished(t *testing.T) {
	ns := natstest.Start(t)
	px := startNATSProxy(t, ns.URL())
	a := openRoster(t, px.URL(), "a") // no Run: nothing is retried
	b := startRoster(t, ns.URL(), "b")

	arrive(t, a, "lobby", "alice")
	ch := px.loseRequest(a.key("lobby", "alice"), purge)
	if err := a.Withdraw(context.Background(), "lobby", "alice"); !errors.Is(err, server.ErrUnavailable) {
		t.Fatalf("withdraw whose write is lost: %v; want ErrUnavailable", err)
	}
	lost(t, "the withdrawal of alice", ch)
	wantFirst(t, a, "lobby", "alice", true, "an arrival after a withdrawal that has not gone through is not first")

	for _, answer := range []bool{false, true} {
		departLost(t, px, a, "lobby", "alice", answer)
		if arrive(t, a, "lobby", "alice") {
			t.Fatalf("an arrival after a departure whose logout is owed is first (answer lost: %v)", answer)
		}
	}
	waitUsers(t, "lobby", []string{"alice"}, b)
	wantLast(t, a, "lobby", "alice", true, "the departure of alice is not last")
	a.run(t)
	arrive(t, a, "lobby", "bob")
	departLost(t, px, a, "lobby", "bob", false)
	waitGone(t, a, "lobby bob")
}
