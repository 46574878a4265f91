package boltstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server/storetest"
)

// streamsHeld counts the streams in the file.
func streamsHeld(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	if err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketStreams).ForEach(func(_, _ []byte) error { n++; return nil })
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestReadingWritesNothing(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	size := func() int64 {
		fi, err := os.Stat(filepath.Join(dir, FileName))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	before := size()
	storetest.ReadUnwritten(t, s, 2000)
	if n := streamsHeld(t, s); n != 0 || size() != before {
		t.Fatalf("after reading 2,000 rooms nobody wrote: %d streams in the file, %d bytes (was %d); reading writes nothing", n, size(), before)
	}
}

func TestSweepDropsStreamsThatAgedOut(t *testing.T) {
	s, err := Open(t.TempDir(), Options{MaxAge: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	var epochs []string
	for i := range 3 {
		out, err := s.Append(ctx, fmt.Sprintf("room/r%d", i), []protocol.Event{{Type: protocol.TypeMessage, User: "u", Text: "x", Time: time.Now()}})
		if err != nil {
			t.Fatal(err)
		}
		epochs = append(epochs, out[0].Event.Epoch)
	}
	// Nobody reads or writes them again: the sweep alone drops them.
	testwait.Until(t, 20*time.Second, 20*time.Millisecond, func() error {
		if n := streamsHeld(t, s); n != 0 {
			return fmt.Errorf("%d of 3 streams still in the file", n)
		}
		return nil
	})
	in, err := s.Info(ctx, "room/r0")
	if err != nil || in.Epoch == epochs[0] || in.Last != 0 {
		t.Fatalf("room/r0 after the sweep: %+v, %v; want a new epoch, not %s, and nothing held", in, err, epochs[0])
	}
}

func TestOpenDropsStreamsAnEarlierPushdMadeOnReads(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// What an earlier pushd left: a stream bucket made by a read, with an
	// epoch and no events.
	err = s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketStreams).CreateBucket([]byte("room/read-once"))
		if err != nil {
			return err
		}
		if _, err := b.CreateBucket(bucketEvents); err != nil {
			return err
		}
		if err := b.Put(keyEpoch, []byte("oldepoch")); err != nil {
			return err
		}
		return b.Put(keyLast, seqKey(0))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(context.Background(), "room/kept", []protocol.Event{{Type: protocol.TypeMessage, User: "u", Text: "x", Time: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	testwait.Until(t, 20*time.Second, 10*time.Millisecond, func() error {
		if n := streamsHeld(t, s); n != 1 {
			return fmt.Errorf("%d streams in the file; want the one with an event", n)
		}
		return nil
	})
}
