package natsstore

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ---- the view ----------------------------------------------------------

// applyRoom records a room key's value at rev (removed: the key is gone
// after rev), unless the view holds a newer one. own marks this server's
// own writes, which reach the view before the watcher reports them.
func (r *Roster) applyRoom(room, user string, rev uint64, servers []string, removed, own bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !own {
		r.watchRev = max(r.watchRev, rev)
	}
	users := r.rooms[room]
	e := users[user]
	if removed || len(servers) == 0 {
		switch {
		case e == nil, e.rev > rev:
			// Gone already, or newer than this removal.
		case own:
			// The watcher reports the removal later, and clears this.
			users[user] = &rosterEntry{rev: rev, tomb: true}
		default:
			delete(users, user)
			if len(users) == 0 {
				delete(r.rooms, room)
			}
		}
		return
	}
	if e != nil && e.rev >= rev || own && rev <= r.watchRev {
		return // the view has this, or the watcher is past it already
	}
	if users == nil {
		users = make(map[string]*rosterEntry)
		r.rooms[room] = users
	}
	users[user] = &rosterEntry{rev: rev, servers: servers}
}

// applyServer records a heartbeat (or its removal) at rev.
func (r *Roster) applyServer(member string, rev uint64, removed bool, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.watchRev = max(r.watchRev, rev)
	st := r.servers[member]
	if st == nil {
		st = &serverState{}
		r.servers[member] = st
	}
	if rev <= st.rev {
		return
	}
	st.rev, st.at, st.dead = rev, now, removed
	if member == r.self && !removed {
		r.selfSeenAt = now
	}
}

// apply feeds one entry the watcher delivered into the view.
func (r *Roster) apply(e jetstream.KeyValueEntry) {
	room, user, member := parseKey(e.Key())
	removed := e.Operation() != jetstream.KeyValuePut
	switch {
	case member != "":
		r.applyServer(member, e.Revision(), removed, time.Now())
	case room != "":
		var servers []string
		if !removed {
			var err error
			if servers, err = decodeServers(e.Value()); err != nil {
				r.log.Warn("skip an unreadable presence entry", "key", e.Key(), "err", err)
				return
			}
		}
		r.applyRoom(room, user, e.Revision(), servers, removed, false)
	}
}

// snapshot is the bucket as a new watcher first delivers it.
type snapshot struct {
	rooms   map[string]map[string]*rosterEntry
	servers map[string]*serverState
	maxRev  uint64
}

func (s *snapshot) add(e jetstream.KeyValueEntry) {
	s.maxRev = max(s.maxRev, e.Revision())
	room, user, member := parseKey(e.Key())
	removed := e.Operation() != jetstream.KeyValuePut
	switch {
	case member != "":
		s.servers[member] = &serverState{rev: e.Revision(), dead: removed}
	case room != "" && !removed:
		servers, err := decodeServers(e.Value())
		if err != nil || len(servers) == 0 {
			return
		}
		if s.rooms[room] == nil {
			s.rooms[room] = make(map[string]*rosterEntry)
		}
		s.rooms[room][user] = &rosterEntry{rev: e.Revision(), servers: servers}
	}
}

// install makes a loaded snapshot the view. Anything newer than the
// snapshot the view already holds (this server's own writes) stays; every
// heartbeat counts as just seen, since nothing was seen while the view was
// being loaded.
func (r *Roster) install(s *snapshot) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for room, users := range r.rooms {
		for user, e := range users {
			if e.rev > s.maxRev {
				if s.rooms[room] == nil {
					s.rooms[room] = make(map[string]*rosterEntry)
				}
				s.rooms[room][user] = e
			}
		}
	}
	for m, st := range s.servers {
		st.at = now
		if m == r.self && !st.dead {
			r.selfSeenAt = now
		}
	}
	for m, st := range r.servers {
		if st.rev > s.maxRev {
			s.servers[m] = st
		}
	}
	r.rooms, r.servers = s.rooms, s.servers
	r.watchRev = max(r.watchRev, s.maxRev)
	if !r.isSynced {
		r.isSynced = true
		close(r.synced)
	}
}

// rosterWatch is a running watcher of the whole bucket.
type rosterWatch struct {
	kw         jetstream.KeyWatcher
	cancel     context.CancelFunc
	done       chan struct{}
	reconnects uint64
	started    time.Time
}

// watch starts a watcher that loads the bucket into a snapshot, installs
// it, then applies every change.
func (r *Roster) watch(ctx context.Context) (*rosterWatch, error) {
	reconnects := r.store.nc.Stats().Reconnects
	if err := r.checkBucket(ctx); err != nil {
		return nil, err
	}
	// The watcher lives as long as its context; its start is bounded by
	// the timeout.
	ctx, cancel := context.WithCancel(ctx)
	timer := time.AfterFunc(r.timeout, cancel)
	kw, err := r.kvHandle().WatchAll(ctx)
	if !timer.Stop() && err == nil {
		err = context.DeadlineExceeded
		_ = kw.Stop()
	}
	if err != nil {
		cancel()
		return nil, unavailable(fmt.Errorf("watch %s: %w", r.bucket, err))
	}
	w := &rosterWatch{kw: kw, cancel: cancel, done: make(chan struct{}), reconnects: reconnects, started: time.Now()}
	go func() {
		defer close(w.done)
		snap := &snapshot{rooms: make(map[string]map[string]*rosterEntry), servers: make(map[string]*serverState)}
		loaded := false
		// The watcher blocks NATS's delivery until its entries are taken,
		// so this loop takes them until the watcher closes the channel.
		for e := range kw.Updates() {
			switch {
			case e == nil:
				if !loaded {
					r.install(snap)
					loaded, snap = true, nil
				}
			case !loaded:
				snap.add(e)
			default:
				r.apply(e)
			}
		}
	}()
	return w, nil
}

// checkBucket forgets the view if the bucket is not the one it was loaded
// from: NATS lost it and it was made again, counting revisions from 1.
func (r *Roster) checkBucket(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	st, err := r.kvHandle().Status(ctx)
	if err != nil {
		return unavailable(fmt.Errorf("watch %s: %w", r.bucket, err))
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return nil
	}
	created := bs.StreamInfo().Created
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.bucketCreated.IsZero() && !created.Equal(r.bucketCreated) {
		r.log.Warn("the presence bucket was made again; reloading it", "bucket", r.bucket)
		r.rooms = make(map[string]map[string]*rosterEntry)
		r.servers = make(map[string]*serverState)
		r.watchRev = 0
	}
	r.bucketCreated = created
	return nil
}

// stop ends the watcher and waits for its loop.
func (w *rosterWatch) stop() {
	_ = w.kw.Stop()
	w.cancel()
	<-w.done
}

func (w *rosterWatch) ended() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}
