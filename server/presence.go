package server

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushd/push/protocol"
)

// presenceTimeout bounds a login or logout that no request waits for.
const presenceTimeout = 10 * time.Second

// presence tracks who is in each room. A user logs in when their first
// connection opens and logs out when the last one has been closed for the
// grace period, so a client that reconnects quickly does not flap.
type presence struct {
	hub    *Hub
	grace  time.Duration
	roster Roster        // nil: presence is this server's alone
	saved  PresenceStore // with no roster: who is present, kept across restarts

	mu    sync.Mutex
	rooms map[string]*roomPresence
}

type roomPresence struct {
	mu      sync.Mutex // held while a login or logout is published, to keep them in order
	members map[string]*member
	// gone is set once the room has been let go (nobody in it): whoever
	// locks it then takes the room's presence anew (see lockRoom).
	gone bool
	// pending counts the members that are pending, changed under mu, so
	// that confirm looks at a room's members only when some are.
	pending atomic.Int32
}

// newMember adds user to the room as pending. r.mu is held.
func (r *roomPresence) newMember(user string) *member {
	m := &member{pending: true}
	r.members[user] = m
	r.pending.Add(1)
	return m
}

// loggedIn marks m as no longer pending. r.mu is held.
func (r *roomPresence) loggedIn(m *member) {
	if m.pending {
		m.pending = false
		r.pending.Add(-1)
	}
}

// remove takes user's membership m out of the room. r.mu is held.
func (r *roomPresence) remove(user string, m *member) {
	delete(r.members, user)
	if m.pending {
		r.pending.Add(-1)
	}
}

type member struct {
	conns  int
	logout *time.Timer // running while conns == 0, until the grace ends
	gen    uint64      // bumped on every join and leave; a stale timer sees a newer one
	// pending: only a poll that does not wait has counted the user in,
	// and they have not logged in (see join).
	pending bool
}

func newPresence(hub *Hub, grace time.Duration, roster Roster, saved PresenceStore) *presence {
	if roster != nil {
		saved = nil // the roster keeps presence across servers and restarts
	}
	return &presence{hub: hub, grace: grace, roster: roster, saved: saved, rooms: make(map[string]*roomPresence)}
}

// adopt brings back who was present before a restart, as if each user's
// last connection had just closed: one that reconnects within the grace
// period stays logged in, and the others are logged out when it ends.
func (p *presence) adopt(ctx context.Context) error {
	if p.saved == nil {
		return nil
	}
	byRoom, err := p.saved.LoadPresent(ctx)
	if err != nil {
		return err
	}
	for room, users := range byRoom {
		r := p.lockRoom(room, true)
		for _, user := range users {
			m := &member{gen: 1}
			r.members[user] = m
			m.logout = time.AfterFunc(p.grace, func() { p.expire(room, user, 1) })
		}
		r.mu.Unlock()
	}
	return nil
}

// save records whether user is present in room, when presence is kept
// across restarts. The caller holds the room's lock.
func (p *presence) save(room, user string, present bool) {
	if p.saved == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), presenceTimeout)
	defer cancel()
	if err := p.saved.SetPresent(ctx, room, user, present); err != nil {
		p.hub.log.Warn("keep presence across restarts", "room", room, "user", user, "present", present, "err", err)
	}
}

// gone publishes the logout of a user the roster found gone from every
// server: their servers vanished, or a departure that failed at first went
// through later. A user this server holds is not logged out: the roster
// lost this server's entry for them and writes it again.
func (p *presence) gone(room, user string) {
	r := p.lockRoom(room, true)
	defer r.mu.Unlock()
	defer p.forgetIfEmpty(room, r)
	if m, ok := r.members[user]; ok && !m.pending {
		return
	}
	p.publishLogout(room, user)
}

// lockRoom returns the presence of the named room, locked: the one p
// holds, or when it holds none a new one if create is set, else nil.
func (p *presence) lockRoom(name string, create bool) *roomPresence {
	for {
		p.mu.Lock()
		r, ok := p.rooms[name]
		if !ok {
			if !create {
				p.mu.Unlock()
				return nil
			}
			r = &roomPresence{members: make(map[string]*member)}
			p.rooms[name] = r
		}
		p.mu.Unlock()
		r.mu.Lock()
		if !r.gone {
			return r
		}
		r.mu.Unlock() // let go meanwhile: take it anew
	}
}

// forgetIfEmpty lets go of a room nobody is in any more, so that presence
// holds only the rooms someone is in. r.mu is held.
func (p *presence) forgetIfEmpty(name string, r *roomPresence) {
	if len(r.members) > 0 {
		return
	}
	r.gone = true
	p.mu.Lock()
	if p.rooms[name] == r {
		delete(p.rooms, name)
	}
	p.mu.Unlock()
}

// join counts a connection of user to room, publishing a login if the user
// was not present. A connection that is quiet (a poll that does not wait)
// logs no one in by itself: it counts the user in as pending, and a
// second connection within the grace period (a client that keeps
// polling, or any other), or a publish of theirs (see confirm), logs them
// in. On success the caller must call
// leave once the connection ends; on error nothing was counted.
func (p *presence) join(ctx context.Context, room, user string, quiet bool) error {
	r := p.lockRoom(room, true)
	defer r.mu.Unlock()
	m, ok := r.members[user]
	if !ok {
		m = r.newMember(user)
	}
	m.conns++
	m.gen++
	if m.logout != nil {
		m.logout.Stop()
		m.logout = nil
	}
	if !m.pending || (quiet && !ok) {
		return nil // logged in already, or not yet
	}
	if err := p.login(ctx, room, user); err != nil {
		// Not logged in; the next connection tries again.
		if ok {
			p.uncount(room, user, m) // pending as it was
		} else {
			r.remove(user, m)
			p.forgetIfEmpty(room, r)
		}
		return err
	}
	r.loggedIn(m)
	return nil
}

// confirm logs in user if a quiet poll has counted them in room as
// pending: a publish of theirs shows a client that is there, and its
// login then comes before its message.
func (p *presence) confirm(ctx context.Context, room, user string) error {
	p.mu.Lock()
	r := p.rooms[room]
	p.mu.Unlock()
	if r == nil || r.pending.Load() == 0 {
		return nil // the common case, without waiting for the room's lock
	}
	if r = p.lockRoom(room, false); r == nil {
		return nil
	}
	defer r.mu.Unlock()
	if m, ok := r.members[user]; ok && m.pending {
		if err := p.login(ctx, room, user); err != nil {
			return err
		}
		r.loggedIn(m)
	}
	return nil
}

// login publishes user's login to room, unless the roster says they are
// logged in already on another server. The caller holds the room's lock.
func (p *presence) login(ctx context.Context, room, user string) error {
	first := true
	if p.roster != nil {
		var err error
		if first, err = p.roster.Arrive(ctx, room, user); err != nil {
			return fmt.Errorf("join presence: %w", err)
		}
	}
	if !first {
		return nil // logged in already, on another server
	}
	_, err := p.hub.Publish(ctx, protocol.RoomStream(room), protocol.Event{Type: protocol.TypeLogin, User: user})
	if err != nil {
		if p.roster != nil {
			// The request's context may be what ended the publish.
			ctx, cancel := context.WithTimeout(context.Background(), presenceTimeout)
			defer cancel()
			if werr := p.roster.Withdraw(ctx, room, user); werr != nil { // no logout is owed
				p.hub.log.Warn("leave presence after a failed login", "room", room, "user", user, "err", werr)
			}
		}
		return err
	}
	p.save(room, user, true)
	return nil
}

// leave uncounts a connection; after the grace period without a new one the
// user logs out.
func (p *presence) leave(room, user string) {
	r := p.lockRoom(room, false)
	if r == nil {
		return
	}
	defer r.mu.Unlock()
	if m, ok := r.members[user]; ok {
		p.uncount(room, user, m)
	}
}

// uncount takes a connection off m, user's membership of room; when it
// was the last, the grace period starts. The room's lock is held.
func (p *presence) uncount(room, user string, m *member) {
	if m.conns--; m.conns > 0 {
		return
	}
	m.gen++
	gen := m.gen
	m.logout = time.AfterFunc(p.grace, func() { p.expire(room, user, gen) })
}

// expire logs user out of room if nothing changed since the leave that
// started the timer (generation gen).
func (p *presence) expire(room, user string, gen uint64) {
	r := p.lockRoom(room, false)
	if r == nil {
		return
	}
	defer r.mu.Unlock()
	m, ok := r.members[user]
	if !ok || m.conns > 0 || m.gen != gen {
		return
	}
	select {
	case <-p.hub.done:
		return // shutting down: the users will be back, or the store is gone
	default:
	}
	r.remove(user, m)
	defer p.forgetIfEmpty(room, r)
	if m.pending {
		return // never logged in: no logout is owed
	}
	if p.roster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), presenceTimeout)
		defer cancel()
		last, err := p.roster.Depart(ctx, room, user)
		if err != nil {
			// The roster retries, and reports the user gone if this was
			// their last server.
			p.hub.log.Warn("leave presence", "room", room, "user", user, "err", err)
			return
		}
		if !last {
			return // still present on another server
		}
	}
	if p.publishLogout(room, user) {
		p.save(room, user, false) // else kept: a restart owes the logout
	}
}

// publishLogout publishes user's logout from room and reports whether it
// went out. The caller holds the room's lock.
func (p *presence) publishLogout(room, user string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), presenceTimeout)
	defer cancel()
	if _, err := p.hub.Publish(ctx, protocol.RoomStream(room), protocol.Event{Type: protocol.TypeLogout, User: user}); err != nil {
		p.hub.log.Warn("publish logout", "room", room, "user", user, "err", err)
		return false
	}
	return true
}

// present returns who is in room, sorted: on any server when there is a
// roster, else on this one.
func (p *presence) present(ctx context.Context, room string) ([]string, error) {
	if p.roster == nil {
		return p.users(room), nil
	}
	return p.roster.Users(ctx, room)
}

// users returns who is present in room on this server, sorted.
func (p *presence) users(room string) []string {
	p.mu.Lock()
	r, ok := p.rooms[room]
	p.mu.Unlock()
	if !ok {
		return []string{}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	users := make([]string, 0, len(r.members))
	for u, m := range r.members {
		if !m.pending {
			users = append(users, u)
		}
	}
	slices.Sort(users)
	return users
}

// count returns how many users are present in room on this server.
func (p *presence) count(room string) int {
	p.mu.Lock()
	r, ok := p.rooms[room]
	p.mu.Unlock()
	if !ok {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.members)
}

// stop cancels every pending logout.
func (p *presence) stop() {
	p.mu.Lock()
	rooms := slices.Collect(maps.Values(p.rooms))
	p.mu.Unlock()
	for _, r := range rooms {
		r.mu.Lock()
		for _, m := range r.members {
			if m.logout != nil {
				m.logout.Stop()
			}
		}
		r.mu.Unlock()
	}
}
