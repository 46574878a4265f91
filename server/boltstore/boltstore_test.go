package boltstore_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
	"github.com/pushd/push/server/boltstore"
	"github.com/pushd/push/server/storetest"
)

// open opens the store in dir with opts; it is closed when the test ends
// (again, if the test closed it: a second Close does nothing).
func open(t testing.TB, dir string, opts boltstore.Options) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, o storetest.Options) server.Store {
		return open(t, t.TempDir(), boltstore.Options{MaxEvents: o.MaxEvents, MaxAge: o.MaxAge, DedupeWindow: o.DedupeWindow})
	})
}

func TestReopenKeepsEventsAndEpoch(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := open(t, dir, boltstore.Options{})
	stored, err := s.Append(ctx, "room/a", []protocol.Event{{Type: protocol.TypeMessage, User: "u", Text: "kept", Time: time.Now().UTC()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, boltstore.Options{})
	evs, in, err := s.Read(ctx, "room/a", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Text != "kept" || in.Epoch != stored[0].Event.Epoch || evs[0].Epoch != stored[0].Event.Epoch {
		t.Fatalf("after reopen: events %+v, info %+v; want the one event in epoch %s", evs, in, stored[0].Event.Epoch)
	}
}

func TestRefusesForeignFiles(t *testing.T) {
	t.Run("corrupt", func(t *testing.T) {
		dir := t.TempDir()
		junk := []byte(strings.Repeat("not a database ", 2000))
		if err := os.WriteFile(filepath.Join(dir, boltstore.FileName), junk, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := boltstore.Open(dir, boltstore.Options{})
		if !errors.Is(err, boltstore.ErrFormat) || !strings.Contains(err.Error(), "not a pushd data file") {
			t.Fatalf("Open of a corrupt file: %v; want ErrFormat saying it is not a pushd data file", err)
		}
		after, _ := os.ReadFile(filepath.Join(dir, boltstore.FileName))
		if string(after) != string(junk) {
			t.Fatal("the corrupt file was changed")
		}
	})
	t.Run("newer format", func(t *testing.T) {
		dir := t.TempDir()
		writeBolt(t, dir, func(tx *bolt.Tx) error {
			b, err := tx.CreateBucket([]byte("meta"))
			if err != nil {
				return err
			}
			return b.Put([]byte("format"), []byte("99"))
		})
		_, err := boltstore.Open(dir, boltstore.Options{})
		if !errors.Is(err, boltstore.ErrFormat) || !strings.Contains(err.Error(), `"99"`) {
			t.Fatalf("Open of format 99: %v; want ErrFormat naming the version", err)
		}
	})
	t.Run("another program's bolt file", func(t *testing.T) {
		dir := t.TempDir()
		writeBolt(t, dir, func(tx *bolt.Tx) error {
			_, err := tx.CreateBucket([]byte("users"))
			return err
		})
		_, err := boltstore.Open(dir, boltstore.Options{})
		if !errors.Is(err, boltstore.ErrFormat) {
			t.Fatalf("Open of a foreign bolt file: %v; want ErrFormat", err)
		}
	})
	t.Run("locked", func(t *testing.T) {
		dir := t.TempDir()
		open(t, dir, boltstore.Options{})
		_, err := boltstore.Open(dir, boltstore.Options{})
		if err == nil || !strings.Contains(err.Error(), "locked by another process") {
			t.Fatalf("second Open: %v; want a locked error", err)
		}
	})
}

// After Close the store says so in the Store contract's terms, and a
// request that reaches it gets 503, not 500.
func TestClosedIsUnavailable(t *testing.T) {
	bs := open(t, t.TempDir(), boltstore.Options{})
	ctx := context.Background()
	if _, err := bs.Info(ctx, "room/a"); err != nil {
		t.Fatal(err)
	}
	bs.Close()
	if _, err := bs.Append(ctx, "room/a", []protocol.Event{{Type: protocol.TypeMessage, User: "u", Text: "x"}}); !errors.Is(err, server.ErrStoreClosed) {
		t.Fatalf("Append after Close: %v; want ErrStoreClosed", err)
	}
	if _, _, err := bs.Read(ctx, "room/a", 0, 1); !errors.Is(err, server.ErrStoreClosed) {
		t.Fatalf("Read after Close: %v; want ErrStoreClosed", err)
	}
	s := pushdtest.Start(t, server.Config{Store: bs})
	s.Post(t, "/v1/rooms/b/messages", `{"user":"u","text":"hi"}`).WantError(t, http.StatusServiceUnavailable, protocol.CodeUnavailable)
}

func writeBolt(t *testing.T, dir string, fn func(*bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, boltstore.FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkAppend measures acknowledged publishes through a server on the
// bolt store.
func BenchmarkAppend(b *testing.B) {
	storetest.BenchmarkPublish(b, func(b *testing.B) server.Store {
		return open(b, b.TempDir(), boltstore.Options{MaxEvents: 10000})
	})
}
