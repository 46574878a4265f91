package natsstore

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pushd/push/internal/natstest"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
	"github.com/pushd/push/server/storetest"
)

// openStore opens a store on the NATS at url until the test ends.
func openStore(t *testing.T, url string, opts Options) *Store {
	t.Helper()
	opts.URL = url
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// pushdStreams counts the JetStream streams of st's prefix.
func pushdStreams(t *testing.T, st *Store) int {
	t.Helper()
	n := 0
	list := st.js.StreamNames(context.Background())
	for name := range list.Name() {
		if strings.HasPrefix(name, strings.ToUpper(st.opts.Prefix)+"_") {
			n++
		}
	}
	if err := list.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestReadingMakesNoStream(t *testing.T) {
	ns := natstest.Start(t)
	st := openStore(t, ns.URL(), Options{Prefix: "readonly"})
	ctx := context.Background()
	storetest.ReadUnwritten(t, st, 200)
	if n := pushdStreams(t, st); n != 0 {
		t.Fatalf("after reading 200 rooms nobody wrote, NATS holds %d of their streams", n)
	}
	if _, err := st.Append(ctx, "room/r7", []protocol.Event{{Type: protocol.TypeMessage, User: "u", Text: "x", Time: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	if n := pushdStreams(t, st); n != 1 {
		t.Fatalf("after one append NATS holds %d streams; want that one", n)
	}
}

func TestSweepDeletesStreamsThatAgedOut(t *testing.T) {
	ns := natstest.Start(t)
	st := openStore(t, ns.URL(), Options{Prefix: "aging", MaxAge: 400 * time.Millisecond})
	ctx := context.Background()
	var epoch string
	for i := range 3 {
		out, err := st.Append(ctx, fmt.Sprintf("room/r%d", i), []protocol.Event{{Type: protocol.TypeMessage, User: "u", Text: "x", Time: time.Now()}})
		if err != nil {
			t.Fatal(err)
		}
		epoch = out[0].Event.Epoch
	}
	// Nobody reads or writes them again: JetStream ages the events out,
	// and the sweep deletes the streams.
	testwait.Until(t, 20*time.Second, 20*time.Millisecond, func() error {
		if n := pushdStreams(t, st); n != 0 {
			return fmt.Errorf("%d of 3 streams still in NATS", n)
		}
		return nil
	})
	// Written again, the stream starts a history of its own.
	out, err := st.Append(ctx, "room/r2", []protocol.Event{{Type: protocol.TypeMessage, User: "u", Text: "again", Time: time.Now()}})
	if err != nil || out[0].Event.Seq != 1 || out[0].Event.Epoch == epoch {
		t.Fatalf("room/r2 written again: %+v, %v; want seq 1 in a new epoch", out, err)
	}
}

// Two servers that drop the same aged-out stream at once renew the empty
// epoch once: both then tell readers the epoch the stream's next history
// gets. A stream whose history had an epoch the empty one no longer gives
// renews nothing.
func TestOneAgeOutRenewsTheEmptyEpochOnce(t *testing.T) {
	ns := natstest.Start(t)
	a := openStore(t, ns.URL(), Options{Prefix: "renew"})
	b := openStore(t, ns.URL(), Options{Prefix: "renew"})
	ctx := context.Background()
	before, err := a.meta.Get(ctx, keyEmpty)
	if err != nil {
		t.Fatal(err)
	}
	ended := server.EmptyEpoch(string(before.Value()), "room/r")
	errs := make(chan error, 2)
	for _, st := range []*Store{a, b} {
		go func() { errs <- st.renewFor(ctx, "room/r", ended) }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	after, err := a.meta.Get(ctx, keyEmpty)
	if err != nil {
		t.Fatal(err)
	}
	if after.Revision() != before.Revision()+1 {
		t.Fatalf("the empty epoch's key went from revision %d to %d; want one renewal", before.Revision(), after.Revision())
	}
	for _, st := range []*Store{a, b} {
		in, err := st.emptyInfo(ctx, "room/r")
		if err != nil || in.Epoch == ended || in.Epoch != server.EmptyEpoch(string(after.Value()), "room/r") {
			t.Fatalf("after the renewal a server tells readers %+v, %v; want the new empty epoch, not %s", in, err, ended)
		}
	}
	if err := a.renewFor(ctx, "room/q", "an-epoch-of-its-own"); err != nil {
		t.Fatal(err)
	}
	if again, err := a.meta.Get(ctx, keyEmpty); err != nil || again.Revision() != after.Revision() {
		t.Fatalf("a history of its own renewed the empty epoch (revision %d, %v)", again.Revision(), err)
	}
}
