package natsstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pushd/push/internal/natstest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
	"github.com/pushd/push/server/natsstore"
	"github.com/pushd/push/server/storetest"
)

func open(t testing.TB, url string, opts natsstore.Options) *natsstore.Store {
	t.Helper()
	opts.URL = url
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := natsstore.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	ns := natstest.Start(t)
	n := 0
	storetest.Run(t, func(t *testing.T, o storetest.Options) server.Store {
		n++ // a prefix per store: each starts empty
		return open(t, ns.URL(), natsstore.Options{Prefix: "t" + string(rune('a'+n%26)) + time.Now().Format("150405999"),
			MaxEvents: o.MaxEvents, MaxAge: o.MaxAge, DedupeWindow: o.DedupeWindow})
	})
}

// BenchmarkPublish measures acknowledged publishes through a server on the
// NATS store (an embedded nats-server, file storage), serial and with many
// concurrent publishers, whose appends the hub groups.
func BenchmarkPublish(b *testing.B) {
	for _, parallel := range []int{1, 64} {
		b.Run(fmt.Sprintf("publishers=%d", parallel), func(b *testing.B) {
			ns := natstest.Start(b)
			st := open(b, ns.URL(), natsstore.Options{})
			srv, err := server.New(server.Config{Store: st})
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

func TestOpenErrors(t *testing.T) {
	ns := natstest.Start(t)
	plain := natstest.StartWithoutJetStream(t)
	tests := []struct {
		name string
		opts natsstore.Options
		want string
	}{
		{"no URL", natsstore.Options{}, "no URL"},
		{"bad prefix", natsstore.Options{URL: ns.URL(), Prefix: "a.b"}, `prefix "a.b"`},
		{"prefix with a colon", natsstore.Options{URL: ns.URL(), Prefix: "pushd:eu"}, `prefix "pushd:eu"`},
		{"prefix too long", natsstore.Options{URL: ns.URL(), Prefix: strings.Repeat("p", 33)}, "1 to 32"},
		{"no JetStream", natsstore.Options{URL: plain.URL()}, "JetStream is not enabled"},
		{"nothing there", natsstore.Options{URL: "nats://127.0.0.1:1", Timeout: time.Second}, "connect to NATS at nats://127.0.0.1:1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := natsstore.Open(context.Background(), tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open: %v; want an error mentioning %q", err, tc.want)
			}
		})
	}
}
