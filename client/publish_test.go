package client_test

import (
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushd/push/client"
	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
)

// loseAnswers lets each publish reach pushd and then, for the first n,
// cuts the connection instead of answering: the message is stored, and
// the client never hears so.
func loseAnswers(n int64, posts *atomic.Int64) pushdtest.Option {
	return pushdtest.Wrap(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost {
				next.ServeHTTP(w, r)
				return
			}
			if posts.Add(1) > n {
				next.ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(&discardWriter{header: http.Header{}}, r)
			panic(http.ErrAbortHandler) // the connection is cut, no answer
		})
	})
}

// discardWriter swallows an answer.
type discardWriter struct{ header http.Header }

func (d *discardWriter) Header() http.Header         { return d.header }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

func TestPublishRetriesALostAnswerWithTheSameID(t *testing.T) {
	var posts atomic.Int64
	s := startPushd(t, loseAnswers(2, &posts))
	c := newClient(t, s, "ann")
	ev, err := c.Publish(t.Context(), "r", "once")
	if err != nil {
		t.Fatalf("Publish with two answers lost: %v", err)
	}
	if posts.Load() != 3 {
		t.Fatalf("%d posts reached the server; want 3 (two answers lost, then one answered)", posts.Load())
	}
	h := s.History(t, pushdtest.RoomPath("r"))
	if len(h) != 1 || h[0].Seq != ev.Seq || h[0].ID != ev.ID || ev.ID == "" {
		t.Fatalf("the room holds %s; Publish returned %s (id %q); want the message once, as returned", pushdtest.Summary(h), pushdtest.OneLine(*ev), ev.ID)
	}
}

func TestPublishWithTriesOnceGivesUpAtOnce(t *testing.T) {
	var posts atomic.Int64
	s := startPushd(t, loseAnswers(1, &posts))
	c := newClient(t, s, "ann")
	_, err := c.Publish(t.Context(), "r", "maybe", client.WithID("line-1"), client.WithTries(1))
	if err == nil || !client.MayHaveApplied(err) {
		t.Fatalf("one try with its answer lost: %v; want an error that may have applied", err)
	}
	// Sending again with the same id settles it: stored once.
	ev, err := c.Publish(t.Context(), "r", "maybe", client.WithID("line-1"))
	if err != nil || ev.ID != "line-1" {
		t.Fatalf("the same id again: %v, %+v", err, ev)
	}
	if h := s.History(t, pushdtest.RoomPath("r")); len(h) != 1 || h[0].Seq != ev.Seq {
		t.Fatalf("the room holds %s; want line-1 once", pushdtest.Summary(h))
	}
}

func TestPublishRefusedIsNotRetried(t *testing.T) {
	var posts atomic.Int64
	s := startPushd(t, loseAnswers(0, &posts))
	c := newClient(t, s, "ann")
	if _, err := c.Publish(t.Context(), "r", "first", client.WithID("k")); err != nil {
		t.Fatal(err)
	}
	_, err := c.Publish(t.Context(), "r", "other text", client.WithID("k"))
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Status != http.StatusConflict || client.MayHaveApplied(err) {
		t.Fatalf("another message under the same id: %v; want a 409 that did not apply", err)
	}
	if posts.Load() != 2 {
		t.Fatalf("%d posts; a refused publish is not tried again", posts.Load())
	}
	if _, err := c.Publish(t.Context(), "r", "x", client.WithID("not an id")); err == nil {
		t.Fatal("an id with a space was sent")
	}
	if posts.Load() != 2 {
		t.Fatalf("%d posts; a bad id is refused before any request", posts.Load())
	}
}

func TestPublishReturnsTheStoredEvent(t *testing.T) {
	s := startPushd(t)
	c := newClient(t, s, "alice")
	ctx := t.Context()
	first, err := c.Publish(ctx, "lobby", "hello <world> & \"you\"")
	if err != nil {
		t.Fatal(err)
	}
	if first.Seq != 1 || first.Epoch == "" || first.Stream != "room/lobby" || first.Type != protocol.TypeMessage ||
		first.User != "alice" || first.Text != "hello <world> & \"you\"" || first.Time.IsZero() {
		t.Fatalf("Publish = %+v", first)
	}
	second, err := c.Publish(ctx, "lobby", "again")
	if err != nil {
		t.Fatal(err)
	}
	if second.Seq != 2 || second.Epoch != first.Epoch {
		t.Fatalf("second event at %s, first at %s", second.Cursor(), first.Cursor())
	}

	cur, err := c.Cursor(ctx, client.Room("lobby"))
	if err != nil {
		t.Fatal(err)
	}
	if cur != second.Cursor() {
		t.Fatalf("Cursor() = %s, want %s", cur, second.Cursor())
	}
	p, err := c.Poll(ctx, client.Room("lobby"), client.PollOptions{Since: "0"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != 2 || p.Events[0].Text != first.Text || p.Events[1].Text != "again" || p.Cursor != second.Cursor().String() {
		t.Fatalf("Poll = %+v", p)
	}
	p, err = c.Poll(ctx, client.Room("lobby"), client.PollOptions{Since: p.Cursor, Wait: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != 0 || p.Cursor != second.Cursor().String() {
		t.Fatalf("long poll with nothing new = %+v", p)
	}
}
