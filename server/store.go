package server

import (
	"context"
	"errors"
	"time"

	"github.com/pushd/push/protocol"
)

// What the server needs from the stores behind it. Store is the one every
// server has (Config.Store; a MemoryStore when nil). The others are
// optional:
//
//   - Follower, Readier and PresenceStore are found on the Store by type
//     assertion: a store that has the method is used for it.
//   - Roster is set as Config.Roster, for servers that share presence.
//
// A store's errors wrap ErrStoreClosed after Close, and ErrUnavailable
// while the service behind a shared store is out of reach.

// ErrStoreClosed is returned by a Store after Close.
var ErrStoreClosed = errors.New("store closed")

// ErrUnavailable is wrapped by a shared store's errors while the service
// behind it cannot be reached. Requests that need the store get 503 and
// are asked to retry; the server stays up and recovers by itself.
var ErrUnavailable = errors.New("store unavailable")

// SweepEvery is how often, at most, a store with an age limit of maxAge
// looks for streams whose events have all aged out: once a minute, or
// four times per maxAge if that is more often.
func SweepEvery(maxAge time.Duration) time.Duration { return min(time.Minute, maxAge/4) }

// RunSweeps calls sweep at once and then, when maxAge is positive, every
// SweepEvery(maxAge) until ctx ends, so that a store's streams nobody
// uses any more do not stay. It returns when ctx ends (or at once, after
// the first sweep, without an age limit); the store runs it on a
// goroutine it owns from open to close.
func RunSweeps(ctx context.Context, maxAge time.Duration, sweep func()) {
	sweep()
	if maxAge <= 0 {
		return
	}
	t := time.NewTicker(SweepEvery(maxAge))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			sweep()
		}
	}
}

// Store is the event log behind the hub: one append-only sequence of events
// per stream.
//
// Implementations must be safe for concurrent use. The hub calls Append for
// one stream from one goroutine at a time, but different streams, reads and
// appends may run concurrently.
type Store interface {
	// Append adds events to the end of stream, in order. It sets each
	// event's Stream, Epoch and Seq (the stream's last seq plus one, two,
	// ...) and returns, for each event, what it did. When Append returns
	// nil the events are as durable as the store promises.
	//
	// An event with an ID (a message its publisher named) is stored once:
	// when the stream took an event with the same ID within the store's
	// de-duplication window, nothing is stored and its Appended is a
	// Repeat that holds the event as first stored (same seq, epoch and
	// time), or a Conflict when the first had another user or text. The
	// window holds as long as the store keeps its data (across restarts
	// for a durable store), in events appended together too.
	//
	// A store of one server appends atomically: on error, none of the
	// events is stored. A store shared by several servers (a Follower)
	// may give a batch seqs that others' events fall between, and on error
	// returns the outcomes of the events it stored before failing, which
	// the hub counts as published.
	Append(ctx context.Context, stream string, events []protocol.Event) ([]Appended, error)
	// Read returns up to limit events of stream with seq > after, oldest
	// first, and the stream's info as of that read. Events dropped by
	// retention are not returned; info.First says where the log begins.
	Read(ctx context.Context, stream string, after uint64, limit int) ([]protocol.Event, StreamInfo, error)
	// Info returns the stream's epoch and the seqs it holds. A stream
	// that holds nothing has Last 0 and an epoch of its own already, which
	// its first append keeps, so readers' cursors go on without a reset.
	//
	// Reading (Info, Read) stores nothing: a stream takes room in the
	// store only once something is appended to it. A stream whose events
	// have all aged out is dropped, at any time, and starts anew in a new
	// epoch, so that no cursor of the history that ended is taken for the
	// next.
	Info(ctx context.Context, stream string) (StreamInfo, error)
	// Close releases the store's resources.
	Close() error
}

// Appended is what Store.Append did with one event.
type Appended struct {
	// Event is the event as stored; for a Repeat, as it was stored first.
	Event protocol.Event
	// Repeat: the stream took an event with the same ID within the
	// de-duplication window, and this one was not stored.
	Repeat bool
	// Conflict: a Repeat whose first event had another user or text.
	// Event has the first one's seq, epoch and time, and its user when
	// the store still knows it.
	Conflict bool
}

// StreamInfo describes a stream's log.
type StreamInfo struct {
	// Epoch changes whenever the stream's history is lost.
	Epoch string
	// First is the oldest seq still held; Last+1 when the log is empty.
	First uint64
	// Last is the newest seq, 0 before the first event.
	Last uint64
}

// Follower is a Store shared by several servers (optional; found on the
// Store). Events appended by any of them reach every server's subscribers
// by following the store, not from the appending server's own hand, so
// that all servers see one order.
type Follower interface {
	// Follow calls deliver with the stream's events after the cursor
	// after, in order and as soon as they are stored, until ctx ends or
	// the store fails; it returns the reason. A stream whose history is
	// no longer after's epoch (it began anew) is not followed: Follow
	// returns at once. deliver is called from one goroutine at a time and
	// must not keep the slice.
	Follow(ctx context.Context, stream string, after protocol.Cursor, deliver func([]protocol.Event)) error
}

// Readier is a Store that can tell whether it is ready to serve (optional;
// found on the Store): /readyz answers 503 with Ready's error while it has
// one.
type Readier interface {
	Ready(ctx context.Context) error
}

// PresenceStore keeps who is present on a server of its own (no Roster)
// across restarts (optional; found on the Store, and unused with a
// Roster): after one, the server gives the users who were present the
// grace period to come back, and logs out those who do not, so a room's
// log never keeps a login without its logout and a restart does not log
// everyone in again. The bolt store implements it.
type PresenceStore interface {
	// SetPresent records that user is (or is no longer) present in room.
	SetPresent(ctx context.Context, room, user string, present bool) error
	// LoadPresent returns who was present, by room.
	LoadPresent(ctx context.Context) (map[string][]string, error)
}

// Roster shares room presence between servers (optional; Config.Roster).
// Each server counts its own connections; the roster says when a user
// arrives in or leaves a room as a whole, so login and logout fire once
// per user, not once per server. Without one, presence is this server's
// alone.
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
