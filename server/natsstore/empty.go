package natsstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushd/push/server"
)

// Streams that hold nothing. A pushd stream gets its JetStream stream at
// its first append, not when it is read or followed: until then its info
// is that of an empty stream, in an epoch made from the store's empty
// epoch (server.EmptyEpoch), which every server shares through the meta
// bucket. The stream made at the first append takes that epoch, and a
// key in the meta bucket says it did (see newStreamEpoch). A stream whose
// events have all aged out (JetStream's MaxAge) is deleted, and the empty
// epoch changes first if it would give the stream the epoch of the
// history that ended (renewFor), so that no cursor of that history is
// taken for the next.

// errNoStream: the pushd stream has no JetStream stream (yet, or any
// more).
var errNoStream = errors.New("no such stream")

// keyEmpty is the meta bucket's key of the empty epoch.
const keyEmpty = "empty"

// metaBucket names the key-value bucket of the store's own settings.
func (s *Store) metaBucket() string { return s.opts.Prefix + "_meta" }

// openMeta opens the meta bucket, making it and the empty epoch if no
// server has yet, and reads the empty epoch.
func (s *Store) openMeta(ctx context.Context) error {
	cfg := jetstream.KeyValueConfig{Bucket: s.metaBucket(), Description: "pushd's settings", Replicas: s.opts.Replicas, Storage: jetstream.FileStorage}
	kv, err := s.js.CreateKeyValue(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = s.js.KeyValue(ctx, cfg.Bucket)
	}
	if err != nil {
		return unavailable(fmt.Errorf("meta bucket %s: %w", cfg.Bucket, err))
	}
	s.meta = kv
	if _, err := kv.Create(ctx, keyEmpty, []byte(server.NewEpoch())); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return unavailable(fmt.Errorf("meta bucket %s: %w", cfg.Bucket, err))
	}
	_, err = s.emptyBase(ctx, true)
	return err
}

// emptyBase returns the store's empty epoch: as last read, or, when fresh
// is set, read anew from the meta bucket. A server that has not seen the
// latest one yet tells readers of an unwritten stream an epoch the stream
// will not have: they get a reset with its first event, and miss nothing.
func (s *Store) emptyBase(ctx context.Context, fresh bool) (string, error) {
	if fresh {
		if _, err := s.readEmpty(ctx); err != nil {
			return "", err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.empty, nil
}

// madeKey is the meta bucket's key that says a stream was made in the
// epoch base gives it.
func madeKey(base, stream string) string { return "made." + base + "." + escape(stream) }

// newStreamEpoch returns the epoch of a stream about to be made: the one
// its readers were told, unless a stream was made in it before (and then
// deleted behind pushd's back): then a new one.
func (s *Store) newStreamEpoch(ctx context.Context, stream string) (string, error) {
	base, err := s.emptyBase(ctx, true)
	if err != nil {
		return "", err
	}
	epoch := server.EmptyEpoch(base, stream)
	_, err = s.meta.Create(ctx, madeKey(base, stream), []byte(epoch))
	switch {
	case errors.Is(err, jetstream.ErrKeyExists):
		return server.NewEpoch(), nil
	case err != nil:
		return "", unavailable(fmt.Errorf("record the making of stream %s: %w", stream, err))
	}
	return epoch, nil
}

// emptyInfo is the info of a stream that has no JetStream stream.
func (s *Store) emptyInfo(ctx context.Context, stream string) (server.StreamInfo, error) {
	base, err := s.emptyBase(ctx, false)
	return server.StreamInfo{Epoch: server.EmptyEpoch(base, stream), First: 1}, err
}

// aged reports whether a stream's events have all aged out: it held
// some, and holds none.
func (s *Store) aged(state jetstream.StreamState) bool {
	return s.opts.MaxAge > 0 && state.Msgs == 0 && state.LastSeq > 0
}

// drop deletes the JetStream stream of a pushd stream whose events have
// all aged out, which held the history of epoch ended. The empty epoch is
// renewed first where it must be (renewFor): a failure then leaves the
// stream in place, never an empty stream in the epoch of the history that
// ended.
func (s *Store) drop(ctx context.Context, stream, ended string) error {
	if err := s.renewFor(ctx, stream, ended); err != nil {
		return err
	}
	s.forget(stream)
	if err := s.js.DeleteStream(ctx, s.streamName(stream)); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return unavailable(fmt.Errorf("delete aged-out stream %s: %w", stream, err))
	}
	return nil
}

// renewTries bounds renewFor's compare-and-set against other renewals.
const renewTries = 5

// renewFor makes sure that stream, once its JetStream stream is deleted,
// is not told the epoch ended of the history it held, so that no cursor of
// that history is taken for the next: it gives the store a new empty epoch
// when the one it has would give stream that epoch again. The renewal is a
// compare-and-set on the revision of the epoch it checked, so when a read
// and the sweep, or two servers, drop the stream at once, the first
// renewal serves them all.
func (s *Store) renewFor(ctx context.Context, stream, ended string) error {
	var err error
	for range renewTries {
		e, rerr := s.readEmpty(ctx)
		if rerr != nil {
			return rerr
		}
		if server.EmptyEpoch(string(e.Value()), stream) != ended {
			return nil // renewed already, or the history had an epoch of its own
		}
		base := server.NewEpoch()
		var rev uint64
		if rev, err = s.meta.Update(ctx, keyEmpty, []byte(base), e.Revision()); err == nil {
			s.setEmpty(base, rev)
			return nil
		}
		// Renewed meanwhile (look again), or NATS failed (the next read
		// says so).
	}
	return unavailable(fmt.Errorf("renew the empty epoch for %s: %w", stream, err))
}

// readEmpty reads the empty epoch's key afresh and records what it holds
// (setEmpty).
func (s *Store) readEmpty(ctx context.Context) (jetstream.KeyValueEntry, error) {
	e, err := s.meta.Get(ctx, keyEmpty)
	if err != nil {
		return nil, unavailable(fmt.Errorf("read the empty epoch: %w", err))
	}
	s.setEmpty(string(e.Value()), e.Revision())
	return e, nil
}

// setEmpty records the empty epoch base, read or written at revision rev
// of its key, unless a later revision has been recorded: a slow read never
// takes the store back to an earlier epoch.
func (s *Store) setEmpty(base string, rev uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rev > s.emptyRev {
		s.empty, s.emptyRev = base, rev
	}
}

// awaitStream waits until the JetStream stream of a pushd stream exists,
// told by JetStream's advisory of its creation, or ctx ends.
func (s *Store) awaitStream(ctx context.Context, stream string) error {
	name := s.streamName(stream)
	created := make(chan struct{}, 1)
	sub, err := s.nc.Subscribe("$JS.EVENT.ADVISORY.STREAM.CREATED."+name, func(*nats.Msg) {
		select {
		case created <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return unavailable(fmt.Errorf("follow %s: wait for it: %w", name, err))
	}
	defer func() { _ = sub.Unsubscribe() }()
	// It may have been made before the subscription took.
	lctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	_, _, err = s.lookup(lctx, stream, false)
	cancel()
	if !errors.Is(err, errNoStream) {
		return err
	}
	select {
	case <-created:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// unwrittenAge is how old a JetStream stream that never held an event
// must be before the sweep deletes it (an earlier pushd made them on
// reads); a younger one may be about to take its first event.
const unwrittenAge = time.Minute

// sweepLoop deletes the JetStream streams of pushd streams that hold no
// events (server.RunSweeps): at once, and then, with an age limit, those
// whose events have all aged out, until ctx ends.
func (s *Store) sweepLoop(ctx context.Context) {
	defer close(s.swept)
	server.RunSweeps(ctx, s.opts.MaxAge, func() { s.sweep(ctx) })
}

// sweep deletes the JetStream streams of this store's prefix that hold no
// events: aged out, or never written and older than unwrittenAge. A
// failure now is tried again at the next sweep.
func (s *Store) sweep(ctx context.Context) {
	if s.checkOpen() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	prefix := strings.ToUpper(s.opts.Prefix) + "_"
	list := s.js.ListStreams(ctx)
	for info := range list.Info() {
		if !strings.HasPrefix(info.Config.Name, prefix) || info.Config.Metadata[metaEpoch] == "" {
			continue // not a pushd stream of this store
		}
		st := info.State
		unwritten := st.LastSeq == 0 && time.Since(info.Created) > unwrittenAge
		if !s.aged(st) && !unwritten {
			continue
		}
		if stream, ok := strings.CutPrefix(info.Config.Description, streamDescription); ok && st.LastSeq > 0 {
			if err := s.renewFor(ctx, stream, info.Config.Metadata[metaEpoch]); err != nil {
				s.log.Debug("sweep: renew the empty epoch", "stream", info.Config.Name, "err", err)
				continue
			}
		}
		if err := s.js.DeleteStream(ctx, info.Config.Name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			s.log.Debug("sweep: delete stream", "stream", info.Config.Name, "err", err)
			continue
		}
		s.forgetName(info.Config.Name)
	}
	if err := list.Err(); err != nil {
		s.log.Debug("sweep: list streams", "err", err)
	}
	s.sweepMadeKeys(ctx)
}

// sweepMadeKeys deletes the meta bucket's keys of streams made under an
// earlier empty epoch: no stream is made in an epoch it gives any more.
func (s *Store) sweepMadeKeys(ctx context.Context) {
	base, err := s.emptyBase(ctx, false)
	if err != nil {
		return
	}
	keys, err := s.meta.ListKeys(ctx, jetstream.MetaOnly())
	if err != nil {
		return
	}
	current := "made." + base + "."
	for key := range keys.Keys() {
		if strings.HasPrefix(key, "made.") && !strings.HasPrefix(key, current) {
			_ = s.meta.Delete(ctx, key)
		}
	}
}

// forgetName drops what the store knows of the JetStream stream name.
func (s *Store) forgetName(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for stream, js := range s.streams {
		if js.name == name {
			delete(s.streams, stream)
		}
	}
}
