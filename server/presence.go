package server

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/pushd/push/protocol"
)

// presence tracks who is in each room. A user logs in when their first
// connection opens and logs out when the last one has been closed for the
// grace period, so a client that reconnects quickly does not flap.
type presence struct {
	hub    *Hub
	grace  time.Duration
	roster Roster // nil: presence is this server's alone

	mu    sync.Mutex
	rooms map[string]*roomPresence
}

type roomPresence struct {
	mu      sync.Mutex // held while a login or logout is published, to keep them in order
	members map[string]*member
}

type member struct {
	conns  int
	logout *time.Timer // running while conns == 0, until the grace ends
	gen    uint64      // bumped on every join and leave; a stale timer sees a newer one
}

func newPresence(hub *Hub, grace time.Duration, roster Roster) *presence {
	return &presence{hub: hub, grace: grace, roster: roster, rooms: make(map[string]*roomPresence)}
}

// gone publishes the logout of a user whose servers all vanished (the
// roster found them).
func (p *presence) gone(room, user string) {
	// TODO(presence roster): publish the logout.
}

func (p *presence) room(name string) *roomPresence {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.rooms[name]
	if !ok {
		r = &roomPresence{members: make(map[string]*member)}
		p.rooms[name] = r
	}
	return r
}

// join counts a connection of user to room, publishing a login if the user
// was not present. On success the caller must call leave once the
// connection ends; on error nothing was counted.
func (p *presence) join(ctx context.Context, room, user string) error {
	r := p.room(room)
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.members[user]
	if !ok {
		m = &member{}
		r.members[user] = m
	}
	m.conns++
	m.gen++
	if m.logout != nil {
		m.logout.Stop()
		m.logout = nil
	}
	if ok {
		return nil
	}
	_, err := p.hub.Publish(ctx, protocol.RoomStream(room), protocol.Event{Type: protocol.TypeLogin, User: user})
	if err != nil {
		delete(r.members, user) // not logged in; the next connection tries again
	}
	return err
}

// leave uncounts a connection; after the grace period without a new one the
// user logs out.
func (p *presence) leave(room, user string) {
	r := p.room(room)
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.members[user]
	if !ok {
		return
	}
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
	r := p.room(room)
	r.mu.Lock()
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
	delete(r.members, user)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.hub.Publish(ctx, protocol.RoomStream(room), protocol.Event{Type: protocol.TypeLogout, User: user}); err != nil {
		p.hub.log.Warn("publish logout", "room", room, "user", user, "err", err)
	}
}

// users returns who is present in room, sorted.
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
	for u := range r.members {
		users = append(users, u)
	}
	slices.Sort(users)
	return users
}

// stop cancels every pending logout.
func (p *presence) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.rooms {
		r.mu.Lock()
		for _, m := range r.members {
			if m.logout != nil {
				m.logout.Stop()
			}
		}
		r.mu.Unlock()
	}
}
