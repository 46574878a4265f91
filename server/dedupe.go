package server

import (
	"crypto/sha256"
	"time"

	"github.com/pushd/push/protocol"
)

// IDRecord is what a store keeps of an event with an ID for its
// de-duplication window: where and when the event was stored, and a sum of
// what it said, so that a repeat is answered without reading the event
// back (it may have left the history since) and a different event under
// the same ID is told apart.
type IDRecord struct {
	Seq  uint64
	Time time.Time
	Sum  [16]byte
}

// NewIDRecord returns the record of ev, as stored.
func NewIDRecord(ev *protocol.Event) IDRecord {
	return IDRecord{Seq: ev.Seq, Time: ev.Time, Sum: contentSum(ev)}
}

// contentSum sums what makes two events with one ID the same: type, user
// and text.
func contentSum(ev *protocol.Event) [16]byte {
	h := sha256.New()
	h.Write([]byte(ev.Type))
	h.Write([]byte{0})
	h.Write([]byte(ev.User))
	h.Write([]byte{0})
	h.Write([]byte(ev.Text))
	var sum [16]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// RepeatOf is the outcome of appending ev (its Stream and Epoch set) to a
// stream that holds rec for ev's ID: the event as first stored, or a
// conflict when the first said something else.
func RepeatOf(ev protocol.Event, rec IDRecord) Appended {
	if contentSum(&ev) != rec.Sum {
		first := protocol.Event{Seq: rec.Seq, Epoch: ev.Epoch, Stream: ev.Stream, Type: ev.Type, Time: rec.Time, ID: ev.ID}
		return Appended{Event: first, Repeat: true, Conflict: true}
	}
	ev.Seq, ev.Time = rec.Seq, rec.Time
	return Appended{Event: ev, Repeat: true}
}

// idWindow is the de-duplication window of one stream in memory: the IDs
// it took in the last span, oldest first. It is not safe for concurrent
// use.
type idWindow struct {
	span  time.Duration
	byID  map[string]IDRecord
	order []idAt // by time of storing, oldest first; order[head:] are live
	head  int
}

type idAt struct {
	id string
	at time.Time
}

// lookup returns the record of id if it is still in the window at now.
func (w *idWindow) lookup(id string, now time.Time) (IDRecord, bool) {
	w.expire(now)
	rec, ok := w.byID[id]
	return rec, ok
}

// add records ev, stored at now.
func (w *idWindow) add(ev *protocol.Event, now time.Time) {
	if w.byID == nil {
		w.byID = make(map[string]IDRecord)
	}
	w.byID[ev.ID] = NewIDRecord(ev)
	w.order = append(w.order, idAt{id: ev.ID, at: now})
}

// expire forgets the IDs stored before now less the span, and keeps the
// queue's backing array bounded by copying down once half of it is dead.
func (w *idWindow) expire(now time.Time) {
	cutoff := now.Add(-w.span)
	for w.head < len(w.order) && w.order[w.head].at.Before(cutoff) {
		delete(w.byID, w.order[w.head].id)
		w.order[w.head] = idAt{}
		w.head++
	}
	if w.head > 0 && w.head >= len(w.order)/2 {
		w.order = append(w.order[:0], w.order[w.head:]...)
		w.head = 0
	}
}
