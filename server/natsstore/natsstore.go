// Package natsstore keeps pushd's state in NATS JetStream, so several pushd
// servers can serve the same streams: each pushd stream is a JetStream
// stream whose sequence is the event's seq, every server follows the
// streams its subscribers read, and presence and task records live in
// JetStream key-value buckets.
package natsstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushd/push/server"
)

// Store is a server.Store on NATS JetStream, shared by every pushd that
// opens one with the same URL and prefix.
type Store struct {
	opts Options
	nc   *nats.Conn
	js   jetstream.JetStream
	log  *slog.Logger
	// closed is closed once the connection has closed and every
	// callback of the connection before that has run.
	closed chan struct{}

	mu       sync.Mutex
	streams  map[string]*jsStream
	empty    string // the empty epoch, as last read (see empty.go)
	emptyRev uint64 // the revision of its key that empty was read or written at

	meta      jetstream.KeyValue // the store's own settings
	stopSweep context.CancelFunc
	swept     chan struct{} // closed when the sweep of empty streams has ended
}

var (
	_ server.Store    = (*Store)(nil)
	_ server.Follower = (*Store)(nil)
	_ server.Readier  = (*Store)(nil)
)

// jsStream is what the store knows of one pushd stream's JetStream stream.
type jsStream struct {
	name  string // JetStream stream name
	epoch string
}

// streamDescription begins the description of the JetStream stream of a
// pushd stream; the pushd stream's name follows.
const streamDescription = "pushd stream "

// metaEpoch is the JetStream stream metadata key that holds the epoch.
const metaEpoch = "pushd_epoch"

// Conn returns the store's NATS connection, for the presence roster and
// task peers that share it.
func (s *Store) Conn() *nats.Conn { return s.nc }

// JetStream returns the store's JetStream context.
func (s *Store) JetStream() jetstream.JetStream { return s.js }

// Ready reports whether NATS and JetStream answer.
func (s *Store) Ready(ctx context.Context) error {
	if !s.nc.IsConnected() {
		return unavailable(fmt.Errorf("not connected to NATS (%s)", s.nc.Status()))
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	if _, err := s.js.AccountInfo(ctx); err != nil {
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return fmt.Errorf("%w: %w", server.ErrUnavailable, ErrNoJetStream)
		}
		return unavailable(fmt.Errorf("JetStream does not answer: %w", err))
	}
	return nil
}

// Close closes the connection to NATS, quietly, and returns once the
// connection's callbacks have run (at most the store's Timeout): nothing
// is logged about the connection after Close.
func (s *Store) Close() error {
	s.stopSweep()
	<-s.swept
	s.nc.Close()
	t := time.NewTimer(s.opts.Timeout)
	defer t.Stop()
	select {
	case <-s.closed:
	case <-t.C:
	}
	return nil
}

// unavailable marks a NATS error as the store being out of reach.
func unavailable(err error) error {
	return fmt.Errorf("%w: %w", server.ErrUnavailable, err)
}

// escape makes a pushd name (A-Z a-z 0-9 . _ - and /) fit a JetStream
// stream name and a subject token, which take neither "." nor "/".
func escape(name string) string { return nameEscaper.Replace(name) }

var nameEscaper = strings.NewReplacer(".", "=2E", "/", "=2F")

// streamName is the JetStream stream that holds a pushd stream.
func (s *Store) streamName(stream string) string {
	return strings.ToUpper(s.opts.Prefix) + "_" + escape(stream)
}

// subject is where a pushd stream's events are published.
func (s *Store) subject(stream string) string {
	return s.opts.Prefix + ".events." + escape(stream)
}

// checkOpen refuses work after Close and while NATS is unreachable, so a
// request fails at once with a clear error instead of waiting out the
// timeout.
func (s *Store) checkOpen() error {
	switch {
	case s.nc.IsClosed():
		return server.ErrStoreClosed
	case !s.nc.IsConnected():
		return unavailable(errors.New("not connected to NATS"))
	}
	return nil
}

// lookup returns the JetStream stream of a pushd stream. One that does not
// exist is made when create is set (by the first append), in the epoch
// its readers were told (see empty.go); errNoStream otherwise.
func (s *Store) lookup(ctx context.Context, stream string, create bool) (*jsStream, jetstream.Stream, error) {
	if err := s.checkOpen(); err != nil {
		return nil, nil, err
	}
	name := s.streamName(stream)
	st, err := s.js.Stream(ctx, name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound) && !create:
		s.forget(stream)
		return nil, nil, errNoStream
	case errors.Is(err, jetstream.ErrStreamNotFound):
		st, err = s.create(ctx, stream, name)
	}
	if err != nil {
		return nil, nil, unavailable(fmt.Errorf("stream %s: %w", name, err))
	}
	info := st.CachedInfo()
	epoch := info.Config.Metadata[metaEpoch]
	if epoch == "" {
		// Created by hand: its creation time names this history.
		epoch = fmt.Sprintf("%x", info.Created.UnixNano())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	js, ok := s.streams[stream]
	if !ok || js.epoch != epoch {
		js = &jsStream{name: name, epoch: epoch}
		s.streams[stream] = js
	}
	return js, st, nil
}

// create makes name, the JetStream stream of a pushd stream, in the epoch
// its readers were told (see empty.go), unless a stream was made in that
// epoch before: then, deleted behind pushd's back (an operator, a NATS
// that lost it), it is made in a new one, whose readers get a reset, so
// that no cursor of the last history is taken for the next. If another
// server made it first, it returns that one.
func (s *Store) create(ctx context.Context, stream, name string) (jetstream.Stream, error) {
	epoch, err := s.newStreamEpoch(ctx, stream)
	if err != nil {
		return nil, err
	}
	cfg := jetstream.StreamConfig{
		Name:        name,
		Description: streamDescription + stream,
		Subjects:    []string{s.subject(stream)},
		Storage:     jetstream.FileStorage,
		Replicas:    s.opts.Replicas,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxMsgs:     int64(s.opts.MaxEvents),
		MaxAge:      s.opts.MaxAge,
		Duplicates:  s.opts.DedupeWindow,
		AllowDirect: true,
		Metadata:    map[string]string{metaEpoch: epoch},
	}
	if cfg.MaxMsgs == 0 {
		cfg.MaxMsgs = -1
	}
	st, err := s.js.CreateStream(ctx, cfg)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		st, err = s.js.Stream(ctx, name)
	}
	return st, err
}

// cached returns the stream as last looked up, or looks it up, making it
// if it does not exist: for appends.
func (s *Store) cached(ctx context.Context, stream string) (*jsStream, error) {
	s.mu.Lock()
	js, ok := s.streams[stream]
	s.mu.Unlock()
	if ok {
		return js, s.checkOpen()
	}
	js, _, err := s.lookup(ctx, stream, true)
	return js, err
}

// Info implements server.Store. It makes nothing: a stream without a
// JetStream stream has an empty one's info, and one whose events all aged
// out is deleted (see empty.go).
func (s *Store) Info(ctx context.Context, stream string) (server.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	js, st, err := s.lookup(ctx, stream, false)
	if errors.Is(err, errNoStream) {
		return s.emptyInfo(ctx, stream)
	}
	if err != nil {
		return server.StreamInfo{}, err
	}
	state := st.CachedInfo().State
	if s.aged(state) {
		if err := s.drop(ctx, stream, js.epoch); err != nil {
			return server.StreamInfo{}, err
		}
		return s.emptyInfo(ctx, stream)
	}
	info := server.StreamInfo{Epoch: js.epoch, First: state.FirstSeq, Last: state.LastSeq}
	if info.Last == 0 || info.First == 0 {
		info.First = info.Last + 1
	}
	return info, nil
}

// forget drops the stream as last looked up, so its next use looks it up
// again.
func (s *Store) forget(stream string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.streams, stream)
}
