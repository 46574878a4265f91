package boltstore

import (
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// idRecordLen is the size of a record in the ids bucket: seq, time, sum.
const idRecordLen = 8 + 8 + 16

// streamIDs is one stream's de-duplication window within a write
// transaction.
type streamIDs struct {
	ids, order *bolt.Bucket
	now        time.Time
}

// idWindow opens the stream's window in b, forgetting first the IDs
// stored longer ago than the store's DedupeWindow.
func (s *Store) idWindow(b *bolt.Bucket, now time.Time) (*streamIDs, error) {
	ids, err := b.CreateBucketIfNotExists(bucketIDs)
	if err != nil {
		return nil, err
	}
	order, err := b.CreateBucketIfNotExists(bucketIDOrder)
	if err != nil {
		return nil, err
	}
	cutoff := now.Add(-s.opts.DedupeWindow).UnixNano()
	c := order.Cursor()
	for k, v := c.First(); k != nil; k, v = c.First() {
		if len(v) < 8 || int64(binary.BigEndian.Uint64(v)) >= cutoff {
			break
		}
		id := v[8:]
		// The record is this seq's unless the ID was stored again since.
		if rec := ids.Get(id); len(rec) == idRecordLen && string(rec[:8]) == string(k) {
			if err := ids.Delete(id); err != nil {
				return nil, err
			}
		}
		if err := c.Delete(); err != nil {
			return nil, err
		}
	}
	return &streamIDs{ids: ids, order: order, now: now}, nil
}

// lookup returns the record of id, if the window holds it.
func (w *streamIDs) lookup(id string) (server.IDRecord, bool) {
	v := w.ids.Get([]byte(id))
	if len(v) != idRecordLen {
		return server.IDRecord{}, false
	}
	rec := server.IDRecord{
		Seq:  binary.BigEndian.Uint64(v[:8]),
		Time: time.Unix(0, int64(binary.BigEndian.Uint64(v[8:16]))).UTC(),
	}
	copy(rec.Sum[:], v[16:])
	return rec, true
}

// add records ev, just stored.
func (w *streamIDs) add(ev *protocol.Event) error {
	rec := server.NewIDRecord(ev)
	v := make([]byte, 0, idRecordLen)
	v = binary.BigEndian.AppendUint64(v, rec.Seq)
	v = binary.BigEndian.AppendUint64(v, uint64(rec.Time.UnixNano()))
	v = append(v, rec.Sum[:]...)
	if err := w.ids.Put([]byte(ev.ID), v); err != nil {
		return fmt.Errorf("record id %s: %w", ev.ID, err)
	}
	o := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(ev.ID)), uint64(w.now.UnixNano()))
	return w.order.Put(seqKey(ev.Seq), append(o, ev.ID...))
}
