package server

import (
	"fmt"
	"testing"
)

func tailEntry(seq uint64) *entry { return &entry{seq: seq} }

// tailSeqs returns the seqs the tail holds, checking each entry is its seq's.
func tailSeqs(t *testing.T, tl *tail) []uint64 {
	t.Helper()
	var seqs []uint64
	for seq := tl.first; seq <= tl.last; seq++ {
		e := tl.lookup(seq)
		if e == nil || e.seq != seq {
			t.Fatalf("lookup(%d) = %v in a tail of %d..%d", seq, e, tl.first, tl.last)
		}
		seqs = append(seqs, seq)
	}
	return seqs
}

func wantHeld(t *testing.T, tl *tail, first, last uint64) {
	t.Helper()
	got := tailSeqs(t, tl)
	if tl.first != first || tl.last != last || len(got) != int(last+1-first) {
		t.Fatalf("tail holds %v (first %d, last %d); want %d..%d", got, tl.first, tl.last, first, last)
	}
	if tl.lookup(first-1) != nil || tl.lookup(last+1) != nil {
		t.Fatalf("lookup outside %d..%d found an entry", first, last)
	}
}

func TestTailGrowsToItsSizeThenDropsTheOldest(t *testing.T) {
	tl := newTail(20, 100) // rounded up to 32
	if tl.size != 32 || len(tl.ring) != minTail {
		t.Fatalf("newTail(20): size %d, ring %d; want 32 and %d", tl.size, len(tl.ring), minTail)
	}
	wantHeld(t, &tl, 101, 100)
	for seq := uint64(101); seq <= 132; seq++ {
		tl.push(tailEntry(seq))
	}
	wantHeld(t, &tl, 101, 132)
	if len(tl.ring) != 32 {
		t.Fatalf("ring of %d after 32 pushes; want 32", len(tl.ring))
	}
	for seq := uint64(133); seq <= 200; seq++ {
		tl.push(tailEntry(seq))
	}
	wantHeld(t, &tl, 169, 200)
	if len(tl.ring) != 32 {
		t.Fatalf("ring grew past its size to %d", len(tl.ring))
	}
}

func TestTailSizes(t *testing.T) {
	for _, tc := range []struct{ size, want int }{{0, 8}, {1, 8}, {8, 8}, {9, 16}, {4096, 4096}, {4097, 8192}} {
		t.Run(fmt.Sprint(tc.size), func(t *testing.T) {
			if got := newTail(tc.size, 0).size; got != tc.want {
				t.Fatalf("newTail(%d).size = %d; want %d", tc.size, got, tc.want)
			}
		})
	}
}

func TestTailReset(t *testing.T) {
	tl := newTail(8, 0)
	for seq := uint64(1); seq <= 5; seq++ {
		tl.push(tailEntry(seq))
	}
	// Events the tail cannot hold went by: it is empty, at the head.
	tl.reset(7)
	wantHeld(t, &tl, 8, 7)
	tl.push(tailEntry(8))
	wantHeld(t, &tl, 8, 8)
	// A new history from seq 1 (beginEpoch).
	tl.reset(0)
	wantHeld(t, &tl, 1, 0)
	tl.push(tailEntry(1))
	tl.push(tailEntry(2))
	wantHeld(t, &tl, 1, 2)
}

// An event after a gap starts the tail anew: it never holds a seq it did
// not get.
func TestTailGapStartsAnew(t *testing.T) {
	tl := newTail(8, 0)
	for seq := uint64(1); seq <= 6; seq++ {
		tl.push(tailEntry(seq))
	}
	tl.push(tailEntry(10))
	wantHeld(t, &tl, 10, 10)
	for seq := uint64(11); seq <= 20; seq++ {
		tl.push(tailEntry(seq))
	}
	wantHeld(t, &tl, 13, 20)
}
