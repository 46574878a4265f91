package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// BenchmarkPublish measures acknowledged publishes through a server's hub
// on a store made by open (which registers its cleanup with b), serial
// and with 64 concurrent publishers, whose appends the hub groups.
func BenchmarkPublish(b *testing.B, open func(b *testing.B) server.Store) {
	for _, parallel := range []int{1, 64} {
		b.Run(fmt.Sprintf("publishers=%d", parallel), func(b *testing.B) {
			srv, err := server.New(server.Config{Store: open(b)})
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Shutdown(context.Background())
			hub := srv.Hub()
			b.SetParallelism(parallel)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := hub.Publish(context.Background(), "room/bench", protocol.Event{Type: protocol.TypeMessage, User: "u", Text: "hello"}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
