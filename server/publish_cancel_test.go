package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/pushd/push/protocol"
)

// gatedStore is a MemoryStore whose appends wait while the gate is shut,
// so a test can hold a store append in flight.
type gatedStore struct {
	*MemoryStore
	entered chan struct{} // one value per append that reached the gate
	gate    chan struct{} // closed to let appends through
}

func (g *gatedStore) Append(ctx context.Context, stream string, events []protocol.Event) ([]protocol.Event, error) {
	g.entered <- struct{}{}
	<-g.gate
	return g.MemoryStore.Append(ctx, stream, events)
}

// waitUntil polls cond every millisecond for up to 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// queued returns how many publishes wait in the stream's open batch.
func queued(st *stream) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.open == nil {
		return 0
	}
	return len(st.open.events)
}

// A publisher that joins a batch as a follower and whose context ends
// before the batch is flushed still gets the outcome: its event is in the
// batch and will be appended, so it must not report failure. Otherwise
// presence.join would forget a user whose login is in the log, and no
// logout would ever follow it (a client that disconnects while its login
// waits behind a busy stream's append).
func TestCancelledPublishInABatchReportsTheAppend(t *testing.T) {
	ctx := t.Context()
	store := &gatedStore{MemoryStore: NewMemoryStore(0, 0), entered: make(chan struct{}, 16), gate: make(chan struct{})}
	h := newHub(store, 0, 64, 1<<20, 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
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
	waitUntil(t, "B waits in the next batch", func() bool { return queued(st) == 1 })
	// alice's connection joins the room; her login follows B's message.
	joinCtx, cancel := context.WithCancel(ctx)
	joinDone := make(chan error, 1)
	go func() { joinDone <- p.join(joinCtx, "lobby", "alice") }()
	waitUntil(t, "alice's login waits in the batch", func() bool { return queued(st) == 2 })
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
