package server

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushd/push/protocol"
)

// benchEvent is a chat message of a typical size.
var benchEvent = protocol.Event{Type: protocol.TypeMessage, User: "alice",
	Text: "a chat message of a fairly typical length, with <html> & \"quotes\""}

func benchHub(b *testing.B, history, maxLag int) *Hub {
	b.Helper()
	store := NewMemoryStore(MemoryOptions{MaxEvents: history})
	h := newHub(store, hubConfig{tailSize: 4096, maxLag: maxLag})
	b.Cleanup(func() {
		h.shutdown()
		store.Close()
	})
	return h
}

// BenchmarkFanout publishes to one stream with 1,000 subscribers, each
// reading on its own goroutine as a transport would, in rounds of a fixed
// number of events: a round is published, and the next one waits until
// every subscriber has all of it. The fixed shape keeps the figures
// comparable between runs (when the publisher may run ahead, how far it
// gets decides the batches, and the cost). One op is one event published
// and delivered to all; ns/delivery and allocs/delivery are per event per
// subscriber.
func BenchmarkFanout(b *testing.B) {
	for _, round := range []int{1, 64} {
		b.Run(fmt.Sprintf("round=%d", round), func(b *testing.B) { benchFanout(b, round) })
	}
}

func benchFanout(b *testing.B, round int) {
	const subs = 1000
	ctx := context.Background()
	h := benchHub(b, 0, 1<<30)
	rounds := max(b.N/round, 1)
	n := rounds * round
	var left atomic.Int64 // subscribers yet to get the whole round
	roundDone := make(chan struct{}, 1)
	var done sync.WaitGroup
	for range subs {
		sub, err := h.subscribe(ctx, "bench", nil, "", 128)
		if err != nil {
			b.Fatal(err)
		}
		done.Go(func() {
			defer sub.close()
			for got := 0; got < n; {
				batch, err := sub.next(ctx, nil)
				if err != nil {
					b.Error(err)
					return
				}
				got += len(batch)
				if got%round == 0 && left.Add(-1) == 0 {
					roundDone <- struct{}{}
				}
			}
		})
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	start := time.Now()
	for range rounds {
		left.Store(subs)
		for range round {
			if _, err := h.Publish(ctx, "bench", benchEvent); err != nil {
				b.Fatal(err)
			}
		}
		<-roundDone
	}
	elapsed := time.Since(start)
	b.StopTimer()
	done.Wait()
	runtime.ReadMemStats(&after)
	deliveries := float64(n) * subs
	b.ReportMetric(float64(elapsed.Nanoseconds())/deliveries, "ns/delivery")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/deliveries, "allocs/delivery")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(n), "allocs/event")
}

// BenchmarkPublish appends to one stream through the hub (memory store,
// encoding, tail) with nobody subscribed: serially, and from all CPUs at
// once, where publishes are grouped into shared store appends.
func BenchmarkPublish(b *testing.B) {
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		h := benchHub(b, 10000, 4096)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := h.Publish(ctx, "bench", benchEvent); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		h := benchHub(b, 10000, 4096)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := h.Publish(ctx, "bench", benchEvent); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkEncode encodes one message into its shared entry (SSE frame
// with the JSON inside).
func BenchmarkEncode(b *testing.B) {
	ev := benchEvent
	ev.Seq, ev.Epoch, ev.Stream, ev.Time = 123456, "k3x9q2m7b1c4", "room/lobby", time.Now().UTC()
	e, err := encodeEntry(&ev)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(e.frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := encodeEntry(&ev); err != nil {
			b.Fatal(err)
		}
	}
}
