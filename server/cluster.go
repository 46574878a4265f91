package server

import (
	"context"
	"errors"

	"github.com/pushd/push/protocol"
)

// ErrUnavailable is wrapped by a shared store's errors while the service
// behind it cannot be reached. Requests that need the store get 503 and
// are asked to retry; the server stays up and recovers by itself.
var ErrUnavailable = errors.New("store unavailable")

// Follower is a Store shared by several servers. Events appended by any of
// them reach every server's subscribers by following the store, not from
// the appending server's own hand, so that all servers see one order.
type Follower interface {
	// Follow calls deliver with the stream's events after seq after, in
	// order and as soon as they are stored, until ctx ends or the store
	// fails; it returns the reason. deliver is called from one goroutine
	// at a time and must not keep the slice.
	Follow(ctx context.Context, stream string, after uint64, deliver func([]protocol.Event)) error
}

// Readier is a Store that can tell whether it is ready to serve: /readyz
// answers 503 with Ready's error while it has one.
type Readier interface {
	Ready(ctx context.Context) error
}

// Roster shares room presence between servers. Each server counts its
// own connections; the roster says when a user arrives in or leaves a
// room as a whole, so login and logout fire once per user, not once per
// server. Without one, presence is this server's alone.
type Roster interface {
	// Arrive records that this server has user in room. first reports that
	// no server had them before, so the caller publishes the login.
	Arrive(ctx context.Context, room, user string) (first bool, err error)
	// Depart records that this server no longer has user in room. last
	// reports that no server has them now, so the caller publishes the
	// logout.
	Depart(ctx context.Context, room, user string) (last bool, err error)
	// Withdraw takes back an Arrive whose login was never published (the
	// publish failed): unlike after a Depart, no logout is owed, so Run
	// never reports the user gone for it, even if the entry only goes
	// later, after a retry.
	Withdraw(ctx context.Context, room, user string) error
	// Users returns who is in room on any server, sorted.
	Users(ctx context.Context, room string) ([]string, error)
	// Run keeps this server's entries alive and calls gone for each user
	// whose servers have all vanished without a Depart, once per user,
	// until ctx ends.
	Run(ctx context.Context, gone func(room, user string))
}
