package server

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/pushd/push/protocol"
)

// BenchmarkIDWindowMemory measures what the memory store's de-duplication
// window holds per message id (32 hexadecimal digits, as the clients make
// them): the bytes of heap per id remembered, reported as B/id.
func BenchmarkIDWindowMemory(b *testing.B) {
	const ids = 100_000
	for range b.N {
		store := NewMemoryStore(MemoryOptions{MaxEvents: 1, DedupeWindow: time.Hour})
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		batch := make([]protocol.Event, 100)
		for i := 0; i < ids; i += len(batch) {
			for j := range batch {
				batch[j] = protocol.Event{Type: protocol.TypeMessage, User: "u", Text: "x", Time: time.Now(), ID: fakeID(i + j)}
			}
			if _, err := store.Append(context.Background(), "room/r", batch); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric((float64(after.HeapAlloc)-float64(before.HeapAlloc))/ids, "B/id")
		runtime.KeepAlive(store)
	}
}

// fakeID is a 32-character id, unique per i.
func fakeID(i int) string {
	const hex = "0123456789abcdef"
	b := []byte("00000000000000000000000000000000")
	for j := len(b) - 1; i > 0; j-- {
		b[j] = hex[i%16]
		i /= 16
	}
	return string(b)
}
