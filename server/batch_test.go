package server

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
)

// Concurrent publishes to one stream are grouped into store appends, and
// each publisher is answered with its own event.
func TestHubConcurrentPublishAnswersEachPublisher(t *testing.T) {
	ctx := t.Context()
	h := newTestHub(t, 0, 64, 1<<20)
	const workers, each = 16, 100
	var wg sync.WaitGroup
	answers := make([][]protocol.Event, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				text := strconv.Itoa(w) + "/" + strconv.Itoa(i)
				ev, err := h.Publish(ctx, "s", hubMessage(text))
				if err != nil {
					t.Error(err)
					return
				}
				if ev.Text != text {
					t.Errorf("publish of %q answered with %q (seq %d)", text, ev.Text, ev.Seq)
					return
				}
				answers[w] = append(answers[w], ev)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	seen := map[uint64]bool{}
	for _, evs := range answers {
		for i, ev := range evs {
			if seen[ev.Seq] || ev.Seq < 1 || ev.Seq > workers*each {
				t.Fatalf("seq %d given twice or out of range", ev.Seq)
			}
			seen[ev.Seq] = true
			if i > 0 && ev.Seq <= evs[i-1].Seq {
				t.Fatalf("one publisher's seqs went %d then %d", evs[i-1].Seq, ev.Seq)
			}
		}
	}
	// The log holds them in seq order, as the subscribers will read them.
	zero := protocol.Cursor{Seq: 0}
	sub, err := h.subscribe(ctx, "s", &zero, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range testCollect(t, sub, workers*each) {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d", i, ev.Seq)
		}
	}
}

// gatedStore is a MemoryStore whose appends wait while the gate is shut,
// so a test can hold a store append in flight.
type gatedStore struct {
	*MemoryStore
	entered chan struct{} // one value per append that reached the gate
	gate    chan struct{} // closed to let appends through
}

func (g *gatedStore) Append(ctx context.Context, stream string, events []protocol.Event) ([]Appended, error) {
	g.entered <- struct{}{}
	<-g.gate
	return g.MemoryStore.Append(ctx, stream, events)
}

// queuedIs says whether n publishes wait in the stream's open batch, as
// what says they should.
func queuedIs(st *stream, n int, what string) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	got := 0
	if st.open != nil {
		got = len(st.open.events)
	}
	if got != n {
		return fmt.Errorf("not yet so that %s: %d publishes in the open batch, want %d", what, got, n)
	}
	return nil
}

// A publisher that joins a batch as a follower and whose context ends
// before the batch is flushed still gets the outcome: its event is in the
// batch and will be appended, so it must not report failure. Otherwise
// presence.join would forget a user whose login is in the log, and no
// logout would ever follow it (a client that disconnects while its login
// waits behind a busy stream's append).
func TestCancelledPublishInABatchReportsTheAppend(t *testing.T) {
	ctx := t.Context()
	store := &gatedStore{MemoryStore: NewMemoryStore(MemoryOptions{}), entered: make(chan struct{}, 16), gate: make(chan struct{})}
	h := newHub(store, hubConfig{tailSize: 64, maxLag: 1 << 20})
	p := newPresence(h, time.Hour, nil, nil)
	t.Cleanup(func() {
		p.stop()
		h.shutdown()
		store.Close()
	})
	name := protocol.RoomStream("lobby")
	st, err := h.acquire(ctx, name, true)
	if err != nil {
		t.Fatal(err)
	}
	defer h.release(st)

	// A: leads a batch and is held in the store's append.
	aDone := make(chan error, 1)
	go func() {
		_, err := h.Publish(ctx, name, protocol.Event{Type: protocol.TypeMessage, User: "a", Text: "a"})
		aDone <- err
	}()
	<-store.entered
	// B: leads the next batch, waiting for its turn.
	bDone := make(chan error, 1)
	go func() {
		_, err := h.Publish(ctx, name, protocol.Event{Type: protocol.TypeMessage, User: "b", Text: "b"})
		bDone <- err
	}()
	testwait.Until(t, 10*time.Second, time.Millisecond, func() error { return queuedIs(st, 1, "B waits in the next batch") })
	// alice's connection joins the room; her login follows B's message.
	joinCtx, cancel := context.WithCancel(ctx)
	joinDone := make(chan error, 1)
	go func() { joinDone <- p.join(joinCtx, "lobby", "alice", false) }()
	testwait.Until(t, 10*time.Second, time.Millisecond, func() error { return queuedIs(st, 2, "alice's login waits in the batch") })
	// Her client goes away before the login is stored; the join still
	// waits for the append it is part of.
	cancel()
	close(store.gate)
	go func() {
		for range store.entered {
		}
	}()
	joinErr := <-joinDone
	if joinErr != nil {
		t.Fatalf("join whose login was appended: %v; want nil", joinErr)
	}
	if err := <-aDone; err != nil {
		t.Fatal(err)
	}
	if err := <-bDone; err != nil {
		t.Fatal(err)
	}
	evs, _, err := store.Read(ctx, name, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var log []string
	for _, ev := range evs {
		log = append(log, fmt.Sprintf("%s %s", ev.Type, ev.User))
	}
	present := p.users("lobby")
	// Whatever the log says about alice must be what presence says: a
	// login with no logout after it means she is present.
	loggedIn := slices.Contains(log, "login alice") && !slices.Contains(log, "logout alice")
	if loggedIn != slices.Contains(present, "alice") {
		t.Fatalf("join returned %v, the log is %q and presence is %q: the log says alice logged in, and no logout will ever follow", joinErr, log, present)
	}
	close(store.entered)
}
