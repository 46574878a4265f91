package boltstore_test

import (
	"maps"
	"slices"
	"testing"

	"github.com/pushd/push/server/boltstore"
)

// Who is present is kept across a reopen; a user no longer present is
// forgotten.
func TestPresenceKeptAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	s := open(t, dir, boltstore.Options{})
	if got, err := s.LoadPresent(ctx); err != nil || len(got) != 0 {
		t.Fatalf("a new store's presence: %v %v; want none", got, err)
	}
	for _, e := range []struct {
		room, user string
		present    bool
	}{
		{"lobby", "alice", true}, {"lobby", "bob", true}, {"dev", "alice", true},
		{"lobby", "bob", false}, {"dev", "carol", false}, // never present: no error
	} {
		if err := s.SetPresent(ctx, e.room, e.user, e.present); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	s = open(t, dir, boltstore.Options{})
	got, err := s.LoadPresent(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"lobby": {"alice"}, "dev": {"alice"}}
	if !maps.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("presence after reopen: %v; want %v", got, want)
	}
}
