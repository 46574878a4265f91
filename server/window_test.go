package server

import (
	"testing"
	"time"

	"github.com/pushd/push/internal/testwait"
)

// newWindowHub returns a hub with the given batch window on a memory store.
func newWindowHub(t *testing.T, window time.Duration) *Hub {
	t.Helper()
	store := NewMemoryStore(MemoryOptions{MaxEvents: 1000})
	h := newHub(store, hubConfig{batchWindow: window, tailSize: 64, maxLag: 1000})
	t.Cleanup(func() {
		h.shutdown()
		store.Close()
	})
	return h
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func TestBatchWindowAnnouncesAQuietStreamAtOnce(t *testing.T) {
	h := newWindowHub(t, time.Hour)
	sub, err := h.subscribe(t.Context(), "room/w", nil, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	_, notify, err := sub.collect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Publish(t.Context(), "room/w", hubMessage("first")); err != nil {
		t.Fatal(err)
	}
	if !isClosed(notify) || sub.st.published.Load() != 1 {
		t.Fatalf("the first event on a quiet stream was not announced at once (published %d)", sub.st.published.Load())
	}

	// Within the window: stored and collectable, but the waiting
	// subscribers are told only at its end (an hour away here).
	batch, notify, err := sub.collect(t.Context())
	if err != nil || len(batch) != 1 {
		t.Fatalf("collect: %d entries, %v", len(batch), err)
	}
	for _, text := range []string{"second", "third"} {
		if _, err := h.Publish(t.Context(), "room/w", hubMessage(text)); err != nil {
			t.Fatal(err)
		}
	}
	if isClosed(notify) || sub.st.published.Load() != 1 {
		t.Fatalf("events within the window announced at once (published %d)", sub.st.published.Load())
	}
	if batch, _, err := sub.collect(t.Context()); err != nil || len(batch) != 2 {
		t.Fatalf("collect within the window: %d entries, %v; want the 2 stored", len(batch), err)
	}
}

func TestBatchWindowAnnouncesTogetherAtItsEnd(t *testing.T) {
	h := newWindowHub(t, 30*time.Millisecond)
	sub, err := h.subscribe(t.Context(), "room/w", nil, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Publish(t.Context(), "room/w", hubMessage("opens the window")); err != nil {
		t.Fatal(err)
	}
	if got := testCollect(t, sub, 1); got[0].Seq != 1 {
		t.Fatalf("first event %d", got[0].Seq)
	}
	for i := range 20 {
		if _, err := h.Publish(t.Context(), "room/w", hubMessage("m"+string(rune('a'+i)))); err != nil {
			t.Fatal(err)
		}
	}
	// A subscriber that took them already parks until the window ends, and
	// is woken then.
	if batch, _, err := sub.collect(t.Context()); err != nil || len(batch) != 20 {
		t.Fatalf("collect: %d entries, %v; want 20", len(batch), err)
	}
	w := &countingWaker{woken: make(chan struct{}, 1)}
	if !sub.park(w) {
		t.Fatal("could not park a caught-up subscriber")
	}
	testwait.Recv(t, 10*time.Second, w.woken, "wake of the parked subscriber after the window")
	if got := sub.st.published.Load(); got != 21 {
		t.Fatalf("announced up to %d, want 21", got)
	}
}

type countingWaker struct{ woken chan struct{} }

func (w *countingWaker) wake() {
	select {
	case w.woken <- struct{}{}:
	default:
	}
}

func TestBatchWindowScalesWithStreamingSubscribers(t *testing.T) {
	h := newWindowHub(t, time.Hour)
	h.cfg.perPusher = time.Minute
	st, err := h.acquire(t.Context(), "room/small", true)
	if err != nil {
		t.Fatal(err)
	}
	defer h.release(st)
	for _, tc := range []struct {
		pushers int64
		want    time.Duration
	}{{0, 0}, {1, time.Minute}, {30, 30 * time.Minute}, {60, time.Hour}, {5000, time.Hour}} {
		st.pushers.Store(tc.pushers)
		if got := st.window(); got != tc.want {
			t.Errorf("window with %d streaming subscribers: %s, want %s", tc.pushers, got, tc.want)
		}
	}

	// No streaming subscriber: back-to-back events are announced at once.
	st.pushers.Store(0)
	for i := range 3 {
		if _, err := h.Publish(t.Context(), "room/small", hubMessage("m")); err != nil {
			t.Fatal(err)
		}
		if got := st.published.Load(); got != uint64(i+1) {
			t.Fatalf("after publish %d: announced up to %d", i+1, got)
		}
	}
}

func TestBatchWindowOffAnnouncesEveryEvent(t *testing.T) {
	for _, window := range []time.Duration{-time.Millisecond, -time.Hour, 0} {
		h := newWindowHub(t, window)
		h.cfg.perPusher = 20 * time.Microsecond
		sub, err := h.subscribe(t.Context(), "room/off", nil, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		sub.st.pushers.Store(1000)
		for i := range 3 {
			_, notify, err := sub.collect(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := h.Publish(t.Context(), "room/off", hubMessage("m")); err != nil {
				t.Fatal(err)
			}
			if !isClosed(notify) || sub.st.published.Load() != uint64(i+1) {
				t.Fatalf("window %s: event %d not announced at once (published %d)", window, i+1, sub.st.published.Load())
			}
		}
	}
}
