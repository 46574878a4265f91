package server

import (
	"context"
	"errors"

	"github.com/pushd/push/protocol"
)

// ErrStoreClosed is returned by a Store after Close.
var ErrStoreClosed = errors.New("store closed")

// Store is the event log behind the hub: one append-only sequence of events
// per stream.
//
// Implementations must be safe for concurrent use. The hub calls Append for
// one stream from one goroutine at a time, but different streams, reads and
// appends may run concurrently.
type Store interface {
	// Append adds events to the end of stream, in order. It sets each
	// event's Stream, Epoch and Seq (the stream's last seq plus one, two,
	// ...) and returns the events as stored. When Append returns nil the
	// events are as durable as the store promises.
	//
	// A store of one server appends atomically: on error, none of the
	// events is stored. A store shared by several servers (a Follower)
	// may give a batch seqs that others' events fall between, and on error
	// returns the events it stored before failing, which the hub counts as
	// published.
	Append(ctx context.Context, stream string, events []protocol.Event) ([]protocol.Event, error)
	// Read returns up to limit events of stream with seq > after, oldest
	// first, and the stream's info as of that read. Events dropped by
	// retention are not returned; info.First says where the log begins.
	Read(ctx context.Context, stream string, after uint64, limit int) ([]protocol.Event, StreamInfo, error)
	// Info returns the stream's epoch and the seqs it holds. A stream that
	// was never written has Last 0 and an epoch of its own already.
	Info(ctx context.Context, stream string) (StreamInfo, error)
	// Close releases the store's resources.
	Close() error
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
