package server_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// brokenStore is a memory store whose appends fail, to the streams named
// (all, for "*"), as a disk that cannot be written does.
type brokenStore struct {
	*server.MemoryStore
	mu     sync.Mutex
	broken map[string]bool
}

func (b *brokenStore) breakStream(stream string, broken bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.broken[stream] = broken
}

func (b *brokenStore) Append(ctx context.Context, stream string, events []protocol.Event) ([]server.Appended, error) {
	b.mu.Lock()
	broken := b.broken[stream] || b.broken["*"]
	b.mu.Unlock()
	if broken {
		return nil, errors.New("write data file: no space left on device")
	}
	return b.MemoryStore.Append(ctx, stream, events)
}

// /readyz answers 503 while an append would fail: the probe's own, or the
// last publish to a stream, until one to that stream succeeds.
func TestReadyzJudgesByAppends(t *testing.T) {
	store := &brokenStore{MemoryStore: server.NewMemoryStore(server.MemoryOptions{MaxEvents: 100}), broken: map[string]bool{}}
	srv := pushdtest.Start(t, server.Config{Store: store})
	t.Cleanup(func() { store.Close() })
	ready := func(want int, says string) {
		t.Helper()
		a := srv.Get(t, "/readyz")
		if a.Status != want || want != http.StatusOK && !strings.Contains(a.Error(t).Message, says) {
			t.Fatalf("readyz: %d %s; want %d saying %q", a.Status, a.Body, want, says)
		}
	}
	ready(http.StatusOK, "")
	store.breakStream("*", true)
	ready(http.StatusServiceUnavailable, "no space left on device")
	store.breakStream("*", false)
	ready(http.StatusOK, "")

	store.breakStream("room/lobby", true)
	if a := srv.Post(t, "/v1/rooms/lobby/messages", `{"user":"ann","text":"hi"}`); a.Status < 500 {
		t.Fatalf("publish to a broken stream: %d", a.Status)
	}
	ready(http.StatusServiceUnavailable, "publishes to room/lobby fail")
	store.breakStream("room/lobby", false)
	ready(http.StatusServiceUnavailable, "publishes to room/lobby fail")
	srv.Publish(t, "lobby", "ann", "hi again")
	ready(http.StatusOK, "")
}
