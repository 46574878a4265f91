package natsstore

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ---- Run ---------------------------------------------------------------

// Run implements server.Roster. Every Refresh it rewrites this server's
// heartbeat (and, if the others had swept this server or NATS lost the
// bucket, takes a new incarnation), and, on a pace of its own so that a long
// sweep never delays the heartbeat, makes sure the view is being fed,
// writes this server's entries under a new incarnation, retries the
// removals that failed, and sweeps the servers that stopped refreshing.
// While NATS is out of reach it waits for the next tick. It returns when
// ctx ends; this server's entries stay, to be swept by the others after
// TTL unless its users reconnect elsewhere first.
func (r *Roster) Run(ctx context.Context, gone func(room, user string)) {
	if gone == nil {
		gone = func(string, string) {}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		every(ctx, r.refresh, func() {
			if r.store.checkOpen() == nil {
				r.beat(ctx)
			}
		})
	})
	var w *rosterWatch
	defer func() {
		if w != nil {
			w.stop()
		}
	}()
	every(ctx, r.refresh, func() {
		if r.store.checkOpen() != nil {
			return
		}
		w = r.keepWatching(ctx, w)
		r.reassert(ctx)
		r.retryPending(ctx, gone)
		if w != nil {
			r.sweep(ctx, gone)
		}
	})
}

// every calls f now and then every interval until ctx ends.
func every(ctx context.Context, interval time.Duration, f func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		f()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// keepWatching returns a live watcher: w, or a new one if w has ended,
// the connection has been re-established since w began (it may have
// missed changes), w has delivered none of this server's heartbeats for
// TTL, or the bucket may have been made again.
func (r *Roster) keepWatching(ctx context.Context, w *rosterWatch) *rosterWatch {
	if w != nil {
		r.mu.Lock()
		lagging := time.Since(r.selfSeenAt) > r.ttl && time.Since(w.started) > r.ttl
		rewatch := r.rewatch
		r.mu.Unlock()
		reconnected := r.store.nc.Stats().Reconnects != w.reconnects
		if !w.ended() && !reconnected && !lagging && !rewatch {
			return w
		}
		r.log.Debug("reload the presence roster", "ended", w.ended(), "reconnected", reconnected, "lagging", lagging, "rewatch", rewatch)
		w.stop()
	}
	r.mu.Lock()
	r.rewatch = false
	r.mu.Unlock()
	nw, err := r.watch(ctx)
	if err != nil {
		r.log.Warn("watch the presence roster", "err", err)
		return nil
	}
	return nw
}

// beat rewrites this server's heartbeat. If the heartbeat is not the one it
// wrote last, the others have swept this server (or NATS lost the bucket):
// it takes a new incarnation, whose entries reassert writes.
func (r *Roster) beat(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	r.mu.Lock()
	me, rev := r.self, r.hbRev
	r.mu.Unlock()
	newRev, err := r.kvHandle().Update(ctx, serverKey(me), heartbeat(), rev)
	switch {
	case err == nil:
		r.mu.Lock()
		r.hbRev = newRev
		r.mu.Unlock()
	case isConflict(err):
		r.log.Warn("this server's presence entries were taken out (it was out of touch for longer than the TTL, or NATS lost them); writing them again", "server", me)
		if err := r.incarnate(ctx); err != nil {
			r.log.Warn("register in the presence roster", "err", err)
		}
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, jetstream.ErrStreamNotFound), errors.Is(err, jetstream.ErrBucketNotFound):
		// The bucket is gone (a NATS that lost its data): make it again;
		// the next heartbeat finds itself missing, and the view is
		// reloaded.
		r.log.Warn("refresh presence: no bucket; making it again", "server", me, "err", err)
		if err := r.openBucket(ctx); err != nil {
			r.log.Warn("open the presence bucket", "err", err)
		}
		r.mu.Lock()
		r.rewatch = true
		r.mu.Unlock()
	default:
		r.log.Warn("refresh presence", "server", me, "err", err)
	}
}

// reassert writes this server's entries under its current incarnation
// after a new one began.
func (r *Roster) reassert(ctx context.Context) {
	r.mu.Lock()
	gen := r.reassertGen
	if r.reasserted == gen {
		r.mu.Unlock()
		return
	}
	present := r.localLocked(func(e *localEntry) bool { return e.present })
	r.mu.Unlock()
	for _, k := range present {
		if err := r.reassertOne(ctx, k.room, k.user); err != nil {
			r.log.Warn("write presence again", "room", k.room, "user", k.user, "err", err)
			return
		}
	}
	r.mu.Lock()
	if r.reassertGen == gen {
		r.reasserted = gen
	}
	r.mu.Unlock()
}

func (r *Roster) reassertOne(ctx context.Context, room, user string) error {
	key, unlock := r.lockKey(room, user)
	defer unlock()
	r.mu.Lock()
	e := r.local[key]
	me, mine := r.self, slices.Clone(r.mine)
	r.mu.Unlock()
	if e == nil || !e.present {
		return nil // departed meanwhile
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	out, err := r.update(ctx, key, room, user, func(servers []string) ([]string, bool) {
		return withOnly(servers, me, mine)
	})
	if err == nil && out.created {
		// The others logged the user out while this server was out of
		// touch; the user is listed again, without a new login.
		r.log.Info("user back in the presence roster", "room", room, "user", user)
	}
	return err
}

// retryPending takes out the entries whose removal failed, calling gone for
// those that were the user's last, then retries the sweeps that went
// unanswered.
func (r *Roster) retryPending(ctx context.Context, gone func(room, user string)) {
	r.mu.Lock()
	pending := r.localLocked(func(e *localEntry) bool { return e.pending })
	r.mu.Unlock()
	for _, k := range pending {
		last, err := r.retryOne(ctx, k.room, k.user)
		if err != nil {
			r.log.Warn("leave presence", "room", k.room, "user", k.user, "err", err)
			return
		}
		if last {
			gone(k.room, k.user)
		}
	}
	r.retrySweeps(ctx, gone)
}

// localLocked returns the room and user of this server's entries for which
// want is true. r.mu is held.
func (r *Roster) localLocked(want func(*localEntry) bool) []roomUser {
	var out []roomUser
	for _, e := range r.local {
		if want(e) {
			out = append(out, roomUser{e.room, e.user})
		}
	}
	return out
}

func (r *Roster) retryOne(ctx context.Context, room, user string) (last bool, err error) {
	key, unlock := r.lockKey(room, user)
	defer unlock()
	r.mu.Lock()
	e := r.local[key]
	mine := slices.Clone(r.mine)
	r.mu.Unlock()
	if e == nil || !e.pending {
		return false, nil // arrived again meanwhile
	}
	removed, err := r.takeOut(ctx, key, e, mine)
	return removed && e.announce, err
}

// retrySweeps takes out again the servers that sweeps took out of room
// keys without an answer, and calls gone for each key that this empties
// or that is found absent: the lost sweep may have emptied it. (Had another
// server's sweep emptied it instead, both would call gone.)
func (r *Roster) retrySweeps(ctx context.Context, gone func(room, user string)) {
	r.mu.Lock()
	lost := maps.Clone(r.lostSweeps)
	r.mu.Unlock()
	for key, l := range lost {
		cctx, cancel := context.WithTimeout(ctx, r.timeout)
		absent := false
		out, err := r.update(cctx, key, l.room, l.user, func(servers []string) ([]string, bool) {
			absent = len(servers) == 0
			return without(servers, l.stale)
		})
		cancel()
		if err != nil {
			r.log.Warn("sweep presence", "room", l.room, "user", l.user, "err", err)
			return
		}
		r.mu.Lock()
		delete(r.lostSweeps, key)
		r.mu.Unlock()
		if out.removed || absent {
			r.log.Info("user gone with their servers", "room", l.room, "user", l.user)
			gone(l.room, l.user)
		}
	}
}

// roomUser names a room key: user in room.
type roomUser struct{ room, user string }

// sweep takes out of the roster the servers whose heartbeat this server has
// not seen change for TTL, or that another server has swept already, and
// calls gone for each user whose key that empties. It does nothing unless
// the view is current (this server's own heartbeat came back through it
// lately): a view that lags would make everyone look stale.
func (r *Roster) sweep(ctx context.Context, gone func(room, user string)) {
	now := time.Now()
	r.mu.Lock()
	if !r.isSynced || now.Sub(r.selfSeenAt) > r.ttl-r.refresh {
		r.mu.Unlock()
		return
	}
	referenced := make(map[string]bool)
	for _, users := range r.rooms {
		for _, e := range users {
			if e.tomb {
				continue
			}
			for _, m := range e.servers {
				referenced[m] = true
				if r.servers[m] == nil {
					// An entry of a server never seen to beat: it has
					// TTL from now to show up.
					r.servers[m] = &serverState{at: now}
				}
			}
		}
	}
	type claim struct {
		member string
		rev    uint64
	}
	var claims []claim
	stale := make(map[string]bool)
	for m, st := range r.servers {
		switch {
		case slices.Contains(r.mine, m):
		case !referenced[m] && (st.dead || st.rev == 0):
			delete(r.servers, m) // nothing left of it
		case st.dead:
			stale[m] = true
		case now.Sub(st.at) > r.ttl:
			stale[m] = true
			if st.rev > 0 {
				claims = append(claims, claim{m, st.rev})
			}
		}
	}
	r.mu.Unlock()
	if len(stale) == 0 {
		return
	}

	kv := r.kvHandle()
	for _, c := range claims {
		cctx, cancel := context.WithTimeout(ctx, r.timeout)
		err := r.purge(cctx, kv, serverKey(c.member), c.rev)
		cancel()
		switch {
		case err == nil:
			r.log.Info("sweep a server that stopped refreshing", "server", c.member)
			r.mu.Lock()
			if st := r.servers[c.member]; st != nil && st.rev == c.rev {
				st.dead = true
			}
			r.mu.Unlock()
		case isConflict(err):
			delete(stale, c.member) // it beat meanwhile, or another server swept it: see next time
		default:
			r.log.Warn("sweep presence", "server", c.member, "err", err)
			return
		}
	}

	swept := slices.Sorted(maps.Keys(stale))
	r.mu.Lock()
	var victims []roomUser
	for room, users := range r.rooms {
		for user, e := range users {
			_, lost := r.lostSweeps[roomKey(room, user)] // retrySweeps has it
			if !e.tomb && !lost && slices.ContainsFunc(e.servers, func(m string) bool { return stale[m] }) {
				victims = append(victims, roomUser{room, user})
			}
		}
	}
	r.mu.Unlock()
	for _, v := range victims {
		key := roomKey(v.room, v.user)
		cctx, cancel := context.WithTimeout(ctx, r.timeout)
		out, err := r.update(cctx, key, v.room, v.user, func(servers []string) ([]string, bool) {
			return without(servers, swept)
		})
		cancel()
		if err != nil {
			if out.removed {
				// It may have landed: retrySweeps finds out.
				r.mu.Lock()
				r.lostSweeps[key] = lostSweep{room: v.room, user: v.user, stale: swept}
				r.mu.Unlock()
			}
			r.log.Warn("sweep presence", "room", v.room, "user", v.user, "err", err)
			return
		}
		if out.removed {
			r.log.Info("user gone with their servers", "room", v.room, "user", v.user)
			gone(v.room, v.user)
		}
	}
}
