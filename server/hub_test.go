package server

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pushd/push/protocol"
)

// newTestHub returns a hub on a memory store, shut down on cleanup.
func newTestHub(t testing.TB, history, tailSize, maxLag int) *Hub {
	t.Helper()
	store := NewMemoryStore(history, 0)
	h := newHub(store, 0, tailSize, maxLag, 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() {
		h.shutdown()
		store.Close()
	})
	return h
}

func hubMessage(text string) protocol.Event {
	return protocol.Event{Type: protocol.TypeMessage, User: "u", Text: text}
}

// collectN reads n events from sub with next, decoding each entry.
func testCollect(t *testing.T, sub *subscription, n int) []protocol.Event {
	t.Helper()
	ctx := t.Context()
	var out []protocol.Event
	for len(out) < n {
		batch, err := sub.next(ctx, nil)
		if err != nil {
			t.Fatalf("next after %d events: %v", len(out), err)
		}
		for _, e := range batch {
			out = append(out, testDecodeEntry(t, e))
		}
	}
	return out
}

func testDecodeEntry(t testing.TB, e *entry) protocol.Event {
	t.Helper()
	var ev protocol.Event
	if err := json.Unmarshal(e.json(), &ev); err != nil {
		t.Fatalf("entry %q: %v", e.frame, err)
	}
	if ev.Seq != e.seq {
		t.Fatalf("entry of seq %d holds event %d", e.seq, ev.Seq)
	}
	return ev
}

// A subscription whose cursor fell behind the in-memory tail reads the
// rest from the store, then the tail, in order and without gaps.
func TestHubSubscriptionCatchesUpFromStore(t *testing.T) {
	ctx := t.Context()
	h := newTestHub(t, 0, 8, 1<<20)
	sub, err := h.subscribe(ctx, "s", nil, "", 16)
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	for i := range n {
		if _, err := h.Publish(ctx, "s", hubMessage(strconv.Itoa(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	evs := testCollect(t, sub, n)
	for i, ev := range evs {
		if ev.Seq != uint64(i+1) || ev.Text != strconv.Itoa(i+1) {
			t.Fatalf("event %d: seq %d text %q", i, ev.Seq, ev.Text)
		}
	}
	if c := sub.Cursor(); c.Seq != n {
		t.Fatalf("cursor %s after %d events", c, n)
	}
}

// A live subscription that falls more than maxLag behind ends with
// ErrSlowConsumer; a new one from its cursor gets the rest.
func TestHubSlowConsumer(t *testing.T) {
	ctx := t.Context()
	h := newTestHub(t, 0, 8, 4)
	sub, err := h.subscribe(ctx, "s", nil, "", 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Publish(ctx, "s", hubMessage("1")); err != nil {
		t.Fatal(err)
	}
	testCollect(t, sub, 1)
	// It finds nothing more and would wait: from now on it is live.
	idle := make(chan time.Time, 1)
	idle <- time.Now()
	if _, err := sub.next(ctx, idle); !errors.Is(err, errIdle) {
		t.Fatalf("next at the head with idle fired: %v; want errIdle", err)
	}
	for i := 2; i <= 10; i++ {
		if _, err := h.Publish(ctx, "s", hubMessage(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sub.next(ctx, nil); !errors.Is(err, ErrSlowConsumer) {
		t.Fatalf("next 9 behind with maxLag 4: %v; want ErrSlowConsumer", err)
	}
	c := sub.Cursor()
	again, err := h.subscribe(ctx, "s", &c, "", 2)
	if err != nil {
		t.Fatal(err)
	}
	evs := testCollect(t, again, 9)
	if evs[0].Seq != 2 || evs[8].Seq != 10 {
		t.Fatalf("resumed from %s: %d..%d; want 2..10", c, evs[0].Seq, evs[8].Seq)
	}
}

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

// encodeEntry builds the SSE frame and the JSON in one buffer: the frame
// is exactly "id: <cursor>\nevent: <type>\ndata: <json>\n\n", and the JSON
// keeps <, > and & as they are.
func TestEncodeEntry(t *testing.T) {
	ev := protocol.Event{Seq: 42, Epoch: "k3x9q2m7b1c4", Stream: "room/lobby", Type: protocol.TypeMessage,
		Time: time.Date(2026, 11, 23, 8, 30, 0, 123456789, time.UTC), User: "alice", Text: "<b>hi</b> & \"bye\"\n"}
	e, err := encodeEntry(&ev)
	if err != nil {
		t.Fatal(err)
	}
	const wantJSON = `{"seq":42,"epoch":"k3x9q2m7b1c4","stream":"room/lobby","type":"message","time":"2026-11-23T08:30:00.123456789Z","user":"alice","text":"<b>hi</b> & \"bye\"\n"}`
	if got := string(e.json()); got != wantJSON {
		t.Fatalf("json:\n%s\nwant\n%s", got, wantJSON)
	}
	if want := "id: k3x9q2m7b1c4:42\nevent: message\ndata: " + wantJSON + "\n\n"; string(e.frame) != want {
		t.Fatalf("frame:\n%q\nwant\n%q", e.frame, want)
	}
	if e.seq != 42 || e.key != "" || e.final {
		t.Fatalf("entry fields: %+v", e)
	}
	task := protocol.Event{Seq: 7, Epoch: "e", Stream: protocol.TasksStream, Type: protocol.TypeProgress, Time: ev.Time,
		Task: &protocol.Task{ID: "t1", Kind: "demo", State: protocol.TaskSucceeded}}
	if e, err = encodeEntry(&task); err != nil || e.key != "t1" || !e.final {
		t.Fatalf("progress entry: %+v, %v; want key t1, final", e, err)
	}
}
