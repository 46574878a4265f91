package server

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
)

// held counts the streams the memory store holds.
func (m *MemoryStore) held() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.streams)
}

func TestMemoryStoreReadingKeepsNothing(t *testing.T) {
	m := NewMemoryStore(MemoryOptions{})
	defer m.Close()
	ctx := context.Background()
	for i := range 2000 {
		room := fmt.Sprintf("room/r%d", i)
		if _, err := m.Info(ctx, room); err != nil {
			t.Fatal(err)
		}
		if _, _, err := m.Read(ctx, room, 0, 10); err != nil {
			t.Fatal(err)
		}
	}
	if n := m.held(); n != 0 {
		t.Fatalf("after reading 2,000 rooms nobody wrote the store holds %d streams", n)
	}
}

func TestMemoryStoreDropsStreamsThatAgedOut(t *testing.T) {
	m := NewMemoryStore(MemoryOptions{MaxAge: 400 * time.Millisecond})
	defer m.Close()
	ctx := context.Background()
	for i := range 3 {
		if _, err := m.Append(ctx, fmt.Sprintf("room/r%d", i), []protocol.Event{{Type: protocol.TypeMessage, User: "u", Text: "x", Time: time.Now()}}); err != nil {
			t.Fatal(err)
		}
	}
	// Nobody uses them again; the store's next calls, of another stream,
	// sweep them out.
	testwait.Until(t, 20*time.Second, 20*time.Millisecond, func() error {
		if _, err := m.Info(ctx, "room/other"); err != nil {
			return err
		}
		if n := m.held(); n != 0 {
			return fmt.Errorf("%d of 3 streams still held", n)
		}
		return nil
	})
}
