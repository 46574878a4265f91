// Package boltstore is pushd's durable event store: every stream's log in
// one bbolt file, fsynced before an append returns, so an acknowledged
// event survives a crash. Epochs are stored too, so cursors stay valid
// across restarts.
package boltstore

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// FormatVersion is the layout of the data file this code reads and writes.
// A file of another version is refused, never rewritten.
const FormatVersion = "1"

// FileName is the data file inside the data directory.
const FileName = "pushd.db"

// ErrFormat is returned (wrapped) by Open for a data file this version of
// pushd cannot read.
var ErrFormat = errors.New("unsupported data format")

// Bucket layout:
//
//	meta                       format = "1", empty = <epoch> (see server.EmptyEpoch)
//	streams/<stream name>/     epoch, last (8-byte big-endian seq)
//	streams/<stream name>/events/<seq (8 bytes)> = <time (8 bytes, unix nanos)><event JSON>
//	streams/<stream name>/ids/<id> = <seq (8)><time (8, unix nanos)><sum (16)>
//	streams/<stream name>/idorder/<seq (8)> = <stored at (8, unix nanos)><id>
//
// ids and idorder are the de-duplication window: the IDs of the events
// stored in it, and the same by seq, to forget them oldest first. A file
// of an earlier pushd has neither, and gets them at its first append; nor
// the empty epoch, which it gets when it is opened.
//
// A stream is in the file only once something was appended to it: reading
// one writes nothing. A stream whose events have all aged out (MaxAge) is
// deleted, and the empty epoch changes.
var (
	bucketMeta    = []byte("meta")
	bucketStreams = []byte("streams")
	bucketEvents  = []byte("events")
	bucketIDs     = []byte("ids")
	bucketIDOrder = []byte("idorder")
	keyFormat     = []byte("format")
	keyEpoch      = []byte("epoch")
	keyEmpty      = []byte("empty")
	keyLast       = []byte("last")
)

// Store is a server.Store on a bbolt file.
type Store struct {
	db   *bolt.DB
	opts Options
	// stopSweep ends the sweep of aged-out streams; swept is closed when
	// it has ended.
	stopSweep context.CancelFunc
	swept     chan struct{}
}

var _ server.Store = (*Store)(nil)

// Options bound what is kept per stream.
type Options struct {
	// MaxEvents is how many events a stream keeps (0: unbounded).
	MaxEvents int
	// MaxAge drops events older than this (0: no age limit).
	MaxAge time.Duration
	// DedupeWindow is how long the IDs of stored events are remembered
	// (0: server.DefaultConfig's DedupeWindow).
	DedupeWindow time.Duration
}

// Open opens (or creates) the store in dir. It refuses a file written in
// another format, and a directory another process holds.
func Open(dir string, opts Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	switch {
	case errors.Is(err, bolt.ErrTimeout):
		return nil, fmt.Errorf("open store %s: the data file is locked by another process (is another pushd running on it?)", path)
	case errors.Is(err, bolt.ErrInvalid), errors.Is(err, bolt.ErrVersionMismatch), errors.Is(err, bolt.ErrChecksum):
		return nil, fmt.Errorf("open store %s: %w: not a pushd data file, or corrupt (%v); move it away to start afresh", path, ErrFormat, err)
	case err != nil:
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			if k, _ := tx.Cursor().First(); k != nil {
				return fmt.Errorf("%w: the file holds data but no pushd format version; it is not a pushd data file", ErrFormat)
			}
			var err error
			if meta, err = tx.CreateBucket(bucketMeta); err != nil {
				return err
			}
			if err := meta.Put(keyFormat, []byte(FormatVersion)); err != nil {
				return err
			}
		}
		if v := meta.Get(keyFormat); string(v) != FormatVersion {
			return fmt.Errorf("%w: the file has format version %q and this pushd reads %q; use the pushd that wrote it, or move the file away", ErrFormat, v, FormatVersion)
		}
		if meta.Get(keyEmpty) == nil {
			if err := meta.Put(keyEmpty, []byte(server.NewEpoch())); err != nil {
				return err
			}
		}
		_, err := tx.CreateBucketIfNotExists(bucketStreams)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if opts.DedupeWindow <= 0 {
		opts.DedupeWindow = server.DefaultConfig().DedupeWindow
	}
	st := &Store{db: db, opts: opts, swept: make(chan struct{})}
	var ctx context.Context
	ctx, st.stopSweep = context.WithCancel(context.Background())
	go st.sweepLoop(ctx)
	return st, nil
}

// Close implements server.Store.
func (s *Store) Close() error {
	s.stopSweep()
	<-s.swept
	return s.db.Close()
}

// closedErr turns bolt's error for a closed database into the Store
// contract's server.ErrStoreClosed, so callers answer 503, not 500.
func closedErr(err error) error {
	if errors.Is(err, bolt.ErrDatabaseNotOpen) {
		return fmt.Errorf("%w: %w", server.ErrStoreClosed, err)
	}
	return err
}

// DB returns the underlying database, for other durable state of the server
// (task records) to live in the same file.
func (s *Store) DB() *bolt.DB { return s.db }

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// streamBucket returns the stream's bucket, creating it in the file's
// empty epoch when create is set (nil otherwise if it does not exist).
func streamBucket(tx *bolt.Tx, stream string, create bool) (*bolt.Bucket, error) {
	streams := tx.Bucket(bucketStreams)
	b := streams.Bucket([]byte(stream))
	if b != nil || !create {
		return b, nil
	}
	b, err := streams.CreateBucket([]byte(stream))
	if err != nil {
		return nil, err
	}
	if _, err := b.CreateBucket(bucketEvents); err != nil {
		return nil, err
	}
	if err := b.Put(keyEpoch, []byte(emptyInfo(tx, stream).Epoch)); err != nil {
		return nil, err
	}
	return b, b.Put(keyLast, seqKey(0))
}

// emptyInfo is the info of a stream the file does not hold.
func emptyInfo(tx *bolt.Tx, stream string) server.StreamInfo {
	base := string(tx.Bucket(bucketMeta).Get(keyEmpty))
	return server.StreamInfo{Epoch: server.EmptyEpoch(base, stream), First: 1}
}

func info(b *bolt.Bucket) server.StreamInfo {
	last := binary.BigEndian.Uint64(b.Get(keyLast))
	in := server.StreamInfo{Epoch: string(b.Get(keyEpoch)), First: last + 1, Last: last}
	if k, _ := b.Bucket(bucketEvents).Cursor().First(); k != nil {
		in.First = binary.BigEndian.Uint64(k)
	}
	return in
}

// Append implements server.Store: one transaction, fsynced before it
// returns.
func (s *Store) Append(_ context.Context, stream string, events []protocol.Event) ([]server.Appended, error) {
	var out []server.Appended
	err := s.db.Update(func(tx *bolt.Tx) error {
		out = make([]server.Appended, len(events))
		b, err := streamBucket(tx, stream, true)
		if err != nil {
			return err
		}
		in := info(b)
		ids, err := s.idWindow(b, time.Now())
		if err != nil {
			return err
		}
		evb := b.Bucket(bucketEvents)
		last := in.Last
		for i, ev := range events {
			ev.Stream, ev.Epoch = stream, in.Epoch
			if ev.ID != "" {
				if rec, ok := ids.lookup(ev.ID); ok {
					out[i] = server.RepeatOf(ev, rec)
					continue
				}
			}
			last++
			ev.Seq = last
			js, err := json.Marshal(&ev)
			if err != nil {
				return fmt.Errorf("encode event: %w", err)
			}
			// bolt keeps the value until the commit: one buffer per event.
			val := make([]byte, 8, 8+len(js))
			binary.BigEndian.PutUint64(val, uint64(ev.Time.UnixNano()))
			val = append(val, js...)
			if err := evb.Put(seqKey(ev.Seq), val); err != nil {
				return err
			}
			if ev.ID != "" {
				if err := ids.add(&ev); err != nil {
					return err
				}
			}
			out[i] = server.Appended{Event: ev}
		}
		if err := b.Put(keyLast, seqKey(last)); err != nil {
			return err
		}
		return s.trim(evb, last)
	})
	if err != nil {
		return nil, fmt.Errorf("append to %s: %w", stream, closedErr(err))
	}
	return out, nil
}

// trim deletes what retention no longer allows, oldest first. Seqs are
// contiguous from the first key to last, so the count needs no scan.
func (s *Store) trim(evb *bolt.Bucket, last uint64) error {
	c := evb.Cursor()
	k, v := c.First()
	if k == nil {
		return nil
	}
	drop := uint64(0)
	if n := last - binary.BigEndian.Uint64(k) + 1; s.opts.MaxEvents > 0 && n > uint64(s.opts.MaxEvents) {
		drop = n - uint64(s.opts.MaxEvents)
	}
	cutoff := s.cutoff()
	for ; k != nil; k, v = c.First() {
		old := cutoff != 0 && recordTime(v) < cutoff
		if drop == 0 && !old {
			break
		}
		if err := c.Delete(); err != nil {
			return err
		}
		if drop > 0 {
			drop--
		}
	}
	return nil
}

// cutoff is the unix-nano time before which events are too old, or 0.
func (s *Store) cutoff() int64 {
	if s.opts.MaxAge <= 0 {
		return 0
	}
	return time.Now().Add(-s.opts.MaxAge).UnixNano()
}

// recordTime is the time stored in front of an event's JSON.
func recordTime(v []byte) int64 {
	if len(v) < 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

// Read implements server.Store.
func (s *Store) Read(ctx context.Context, stream string, after uint64, limit int) ([]protocol.Event, server.StreamInfo, error) {
	var events []protocol.Event
	var in server.StreamInfo
	expired := false
	err := s.db.View(func(tx *bolt.Tx) error {
		b, _ := streamBucket(tx, stream, false)
		if b == nil {
			in = emptyInfo(tx, stream)
			return nil
		}
		if expired = s.aged(b); expired {
			return nil // age retention applies even to a stream nobody writes to
		}
		in = info(b)
		c := b.Bucket(bucketEvents).Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil && len(events) < limit; k, v = c.Next() {
			var ev protocol.Event
			if len(v) < 8 {
				return fmt.Errorf("event %d: %w: short record", binary.BigEndian.Uint64(k), ErrFormat)
			}
			if err := json.Unmarshal(v[8:], &ev); err != nil {
				return fmt.Errorf("event %d: %w: %v", binary.BigEndian.Uint64(k), ErrFormat, err)
			}
			events = append(events, ev)
		}
		return nil
	})
	switch {
	case err != nil:
		return nil, server.StreamInfo{}, fmt.Errorf("read %s: %w", stream, closedErr(err))
	case expired:
		if err := s.expire(stream); err != nil {
			return nil, server.StreamInfo{}, err
		}
		return s.Read(ctx, stream, after, limit)
	}
	return events, in, nil
}

// Info implements server.Store. It writes nothing: a stream the file does
// not hold has the info emptyInfo gives it.
func (s *Store) Info(ctx context.Context, stream string) (server.StreamInfo, error) {
	var in server.StreamInfo
	expired := false
	err := s.db.View(func(tx *bolt.Tx) error {
		b, _ := streamBucket(tx, stream, false)
		switch {
		case b == nil:
			in = emptyInfo(tx, stream)
		case s.aged(b):
			expired = true
		default:
			in = info(b)
		}
		return nil
	})
	switch {
	case err != nil:
		return in, fmt.Errorf("info %s: %w", stream, closedErr(err))
	case expired:
		if err := s.expire(stream); err != nil {
			return in, err
		}
		return s.Info(ctx, stream)
	}
	return in, nil
}

// aged reports whether the oldest event of the stream in b is past the
// age limit, or, with an age limit, all its events have aged out.
func (s *Store) aged(b *bolt.Bucket) bool {
	cutoff := s.cutoff()
	if cutoff == 0 {
		return false
	}
	k, v := b.Bucket(bucketEvents).Cursor().First()
	return k == nil && info(b).Last > 0 || k != nil && recordTime(v) < cutoff
}

// expire trims the stream to its age limit and deletes it if that leaves
// nothing.
func (s *Store) expire(stream string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, _ := streamBucket(tx, stream, false)
		if b == nil {
			return nil
		}
		if err := s.trim(b.Bucket(bucketEvents), info(b).Last); err != nil {
			return err
		}
		return dropIfEmpty(tx, stream, b)
	})
	if err != nil {
		return fmt.Errorf("trim %s: %w", stream, closedErr(err))
	}
	return nil
}

// dropIfEmpty deletes the stream in b if it holds no events. If it held
// some (all aged out), the file gets a new empty epoch, so that the
// stream's next history is of another epoch than the one that ended; one
// that never held any (an earlier pushd made streams on reads) goes
// quietly.
func dropIfEmpty(tx *bolt.Tx, stream string, b *bolt.Bucket) error {
	if k, _ := b.Bucket(bucketEvents).Cursor().First(); k != nil {
		return nil
	}
	held := info(b).Last > 0
	if err := tx.Bucket(bucketStreams).DeleteBucket([]byte(stream)); err != nil {
		return err
	}
	if !held {
		return nil
	}
	return tx.Bucket(bucketMeta).Put(keyEmpty, []byte(server.NewEpoch()))
}

// sweepLoop deletes the streams that hold no events (server.RunSweeps):
// at once, and then, with an age limit, those whose events have all aged
// out, until ctx ends: streams nobody reads or writes any more do not
// stay in the file.
func (s *Store) sweepLoop(ctx context.Context) {
	defer close(s.swept)
	server.RunSweeps(ctx, s.opts.MaxAge, func() {
		_ = s.sweep() // a failure now is tried again at the next sweep
	})
}

// sweep deletes the streams that hold no events, or only aged-out ones.
func (s *Store) sweep() error {
	cutoff := s.cutoff()
	return s.db.Update(func(tx *bolt.Tx) error {
		var old []string
		c := tx.Bucket(bucketStreams).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if v != nil {
				continue // not a bucket
			}
			b := tx.Bucket(bucketStreams).Bucket(k)
			last, rec := b.Bucket(bucketEvents).Cursor().Last()
			if last == nil || cutoff != 0 && recordTime(rec) < cutoff {
				old = append(old, string(k))
			}
		}
		for _, name := range old {
			b := tx.Bucket(bucketStreams).Bucket([]byte(name))
			if err := s.trim(b.Bucket(bucketEvents), info(b).Last); err != nil {
				return err
			}
			if err := dropIfEmpty(tx, name, b); err != nil {
				return err
			}
		}
		return nil
	})
}
