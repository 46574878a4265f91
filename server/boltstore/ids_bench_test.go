package boltstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/pushd/push/protocol"
)

// BenchmarkIDWindowDisk measures the room the de-duplication window takes
// in the data file per message id (32 hexadecimal digits, as clients make
// them): the bytes of the pages in use by the ids and idorder buckets,
// reported as B/id.
func BenchmarkIDWindowDisk(b *testing.B) {
	const ids = 20_000
	for range b.N {
		s, err := Open(b.TempDir(), Options{MaxEvents: 1, DedupeWindow: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		batch := make([]protocol.Event, 100)
		for i := 0; i < ids; i += len(batch) {
			for j := range batch {
				batch[j] = protocol.Event{Type: protocol.TypeMessage, User: "u", Text: "x", Time: time.Now(), ID: fmt.Sprintf("%032x", i+j)}
			}
			if _, err := s.Append(context.Background(), "room/r", batch); err != nil {
				b.Fatal(err)
			}
		}
		var inUse int
		err = s.db.View(func(tx *bolt.Tx) error {
			sb := tx.Bucket(bucketStreams).Bucket([]byte("room/r"))
			for _, name := range [][]byte{bucketIDs, bucketIDOrder} {
				st := sb.Bucket(name).Stats()
				inUse += st.BranchInuse + st.LeafInuse
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(inUse)/ids, "B/id")
		s.Close()
	}
}
