// Package natsstore keeps pushd's state in NATS JetStream, so several pushd
// servers can serve the same streams: each pushd stream is a JetStream
// stream whose sequence is the event's seq, every server follows the
// streams its subscribers read, and presence and task records live in
// JetStream key-value buckets.
package natsstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushd/push/internal/backoff"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// Options configure a Store. URL is required; Open takes the zero fields
// of the others from DefaultOptions.
type Options struct {
	// URL is the NATS server, or a comma-separated list of a cluster's.
	URL string
	// CredsFile is a NATS credentials file (JWT and seed), if the server
	// needs one.
	CredsFile string
	// Prefix names everything pushd creates in NATS, so several pushd
	// clusters can share one NATS.
	Prefix string
	// Replicas is how many copies JetStream keeps of each stream (3 on a
	// three-node NATS cluster).
	Replicas int
	// MaxEvents and MaxAge bound each stream's history (0: no bound).
	MaxEvents int
	MaxAge    time.Duration
	// DedupeWindow is how long JetStream remembers the IDs of stored
	// events (0: server.DefaultConfig's DedupeWindow); at most MaxAge,
	// when that is set.
	DedupeWindow time.Duration
	// Timeout bounds each call to NATS. A call that takes longer fails
	// with server.ErrUnavailable.
	Timeout time.Duration
	// Name identifies this server's connection in NATS monitoring.
	Name string
	// Logger receives connection changes (default: discarded).
	Logger *slog.Logger
}

// DefaultOptions returns the defaults of Options, written once here: Open
// takes a zero field from it, and pushd serve's flags start from it.
func DefaultOptions() Options {
	return Options{Prefix: "pushd", Replicas: 1, Timeout: 5 * time.Second, Name: "pushd"}
}

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

	mu      sync.Mutex
	streams map[string]*jsStream
	empty   string // the empty epoch, as last read (see empty.go)

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

// metaEpoch is the JetStream stream metadata key that holds the epoch.
const metaEpoch = "pushd_epoch"

// ValidatePrefix checks a prefix for Options.Prefix: it names streams,
// key-value buckets and subjects, so it is 1 to 32 letters, digits, - and _.
func ValidatePrefix(prefix string) error {
	ok := prefix != "" && len(prefix) <= 32
	for i := 0; ok && i < len(prefix); i++ {
		c := prefix[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
	}
	if !ok {
		return fmt.Errorf("prefix %q: use 1 to 32 letters, digits, - and _", prefix)
	}
	return nil
}

// Open connects to NATS and checks that JetStream is there. After Open the
// connection reconnects by itself for as long as the Store is open.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.URL == "" {
		return nil, errors.New("open NATS store: no URL")
	}
	d := DefaultOptions()
	opts.Prefix = cmp.Or(opts.Prefix, d.Prefix)
	if err := ValidatePrefix(opts.Prefix); err != nil {
		return nil, fmt.Errorf("open NATS store: %w", err)
	}
	if opts.Replicas <= 0 {
		opts.Replicas = d.Replicas
	}
	if opts.Timeout <= 0 {
		opts.Timeout = d.Timeout
	}
	opts.Name = cmp.Or(opts.Name, d.Name)
	if opts.DedupeWindow <= 0 {
		opts.DedupeWindow = server.DefaultConfig().DedupeWindow
	}
	if opts.MaxAge > 0 {
		opts.DedupeWindow = min(opts.DedupeWindow, opts.MaxAge) // JetStream's rule
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	closed := make(chan struct{})
	natsOpts := []nats.Option{
		nats.Name(opts.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		// A NATS server that vanished without closing the connection is
		// noticed within seconds, and another in the cluster is used.
		nats.PingInterval(2 * time.Second),
		nats.MaxPingsOutstanding(2),
		// While disconnected, publishes fail at once rather than wait in a
		// buffer: one that was refused with 503 must never land later.
		nats.ReconnectBufSize(-1),
		nats.Timeout(opts.Timeout),
		// The connection's callbacks run on a goroutine of its own, after
		// the fact: one for a disconnect may run once Close has closed the
		// connection, and Close itself calls it. A closed connection is
		// not lost, and is not reconnecting.
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if !nc.IsClosed() {
				log.Warn("lost NATS connection; reconnecting", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("NATS connection back", "url", nc.ConnectedUrlRedacted())
		}),
		// The last callback of a connection; Close waits for it.
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }),
	}
	if opts.CredsFile != "" {
		natsOpts = append(natsOpts, nats.UserCredentials(opts.CredsFile))
	}
	nc, err := nats.Connect(opts.URL, natsOpts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", opts.URL, err)
	}
	if err := checkVersion(nc.ConnectedServerVersion()); err != nil {
		nc.Close()
		return nil, fmt.Errorf("open NATS store at %s: %w", opts.URL, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("open JetStream at %s: %w", opts.URL, err)
	}
	s := &Store{opts: opts, nc: nc, js: js, log: log, closed: closed, streams: make(map[string]*jsStream), swept: make(chan struct{})}
	// A NATS cluster that is still forming answers JetStream requests only
	// once it has a leader: wait for that as long as ctx allows.
	for {
		err := s.Ready(ctx)
		if err == nil {
			err = s.openMeta(ctx)
		}
		if err == nil {
			var sweepCtx context.Context
			sweepCtx, s.stopSweep = context.WithCancel(context.Background())
			go s.sweepLoop(sweepCtx)
			return s, nil
		}
		if errors.Is(err, ErrNoJetStream) {
			nc.Close()
			return nil, fmt.Errorf("open NATS store at %s: %w", opts.URL, err)
		}
		if !backoff.Sleep(ctx, 250*time.Millisecond) {
			nc.Close()
			return nil, fmt.Errorf("open NATS store at %s: %w (is JetStream on, and has the NATS cluster formed?)", opts.URL, err)
		}
	}
}

// ErrNoJetStream: the NATS server runs without JetStream.
var ErrNoJetStream = errors.New("JetStream is not enabled on the NATS server (start it with -js, or jetstream {} in its config)")

// MinServerVersion is the oldest NATS server the store works with: it
// reads history with batched direct gets (2.11) and keeps epochs in
// stream metadata (2.10).
const MinServerVersion = "2.11.0"

// checkVersion refuses a NATS server older than MinServerVersion.
func checkVersion(v string) error {
	var major, minor int
	if _, err := fmt.Sscanf(strings.TrimPrefix(v, "v"), "%d.%d", &major, &minor); err != nil {
		return fmt.Errorf("NATS server version %q not understood; pushd needs %s or newer", v, MinServerVersion)
	}
	if major < 2 || (major == 2 && minor < 11) {
		return fmt.Errorf("NATS server %s is too old; pushd needs %s or newer", v, MinServerVersion)
	}
	return nil
}

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
		Description: "pushd stream " + stream,
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
		if err := s.drop(ctx, stream); err != nil {
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

// Append implements server.Store: it publishes the events in order and
// returns once JetStream has acknowledged every one. Events other servers
// append at the same time may fall between them. On an error it returns
// the events stored before it, which are in the stream.
func (s *Store) Append(ctx context.Context, stream string, events []protocol.Event) ([]server.Appended, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	out, err := s.append(ctx, stream, events)
	if len(out) == 0 && errors.Is(err, errStreamGone) {
		// Deleted since this server last used it (its events aged out,
		// and another server swept it): nothing was stored. Make it
		// anew and append there.
		out, err = s.append(ctx, stream, events)
	}
	return out, err
}

// errStreamGone: no JetStream stream took a publish: the stream is gone.
var errStreamGone = errors.New("the stream is gone")

// append is Append, once.
func (s *Store) append(ctx context.Context, stream string, events []protocol.Event) ([]server.Appended, error) {
	js, err := s.cached(ctx, stream)
	if err != nil {
		return nil, err
	}
	subject := s.subject(stream)
	acks := make([]jetstream.PubAckFuture, len(events))
	for i := range events {
		events[i].Stream, events[i].Epoch, events[i].Seq = stream, js.epoch, 0
		data, err := json.Marshal(&events[i])
		if err == nil {
			msg := &nats.Msg{Subject: subject, Data: data}
			opts := []jetstream.PublishOpt{jetstream.WithExpectStream(js.name)}
			if id := events[i].ID; id != "" {
				// JetStream keeps the stream's de-duplication window.
				opts = append(opts, jetstream.WithMsgID(id))
			}
			acks[i], err = s.js.PublishMsgAsync(msg, opts...)
			if err != nil {
				err = unavailable(fmt.Errorf("publish to %s: %w", js.name, err))
			}
		}
		if err != nil {
			// The ones already sent may be stored: wait for them.
			stored, aerr := s.await(ctx, js, stream, events, acks[:i])
			return stored, cmp.Or(aerr, err)
		}
	}
	return s.await(ctx, js, stream, events, acks)
}

// await collects the acknowledgements of events, in order, up to the first
// that fails. A duplicate's acknowledgement names the seq of the event
// first stored with its ID, which is read back to answer with it.
func (s *Store) await(ctx context.Context, js *jsStream, stream string, events []protocol.Event, acks []jetstream.PubAckFuture) ([]server.Appended, error) {
	out := make([]server.Appended, 0, len(acks))
	for i, f := range acks {
		select {
		case ack := <-f.Ok():
			events[i].Seq = ack.Sequence
			if !ack.Duplicate {
				out = append(out, server.Appended{Event: events[i]})
				continue
			}
			a, err := s.repeatOf(ctx, js, events[i])
			if err != nil {
				return out, err
			}
			out = append(out, a)
		case err := <-f.Err():
			if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
				s.forget(stream) // deleted behind our back: look it up again next time
				err = fmt.Errorf("%w: %w", errStreamGone, err)
			}
			return out, unavailable(fmt.Errorf("publish to %s: %w", js.name, err))
		case <-ctx.Done():
			return out, unavailable(fmt.Errorf("publish to %s: no acknowledgement within %s", js.name, s.opts.Timeout))
		}
	}
	return out, nil
}

// repeatOf answers ev, whose ID JetStream found in its window, with the
// event first stored under that ID (at ev.Seq), read back; when retention
// dropped it meanwhile, with ev at that seq, as the same content is all
// that can be told.
func (s *Store) repeatOf(ctx context.Context, js *jsStream, ev protocol.Event) (server.Appended, error) {
	var first *protocol.Event
	err := s.directGet(ctx, js.name, ev.Seq, 1, func(seq uint64, data []byte) error {
		if seq != ev.Seq {
			return nil // the first is gone; this is a later one
		}
		got, err := decode(data, ev.Stream, ev.Epoch, seq)
		first = &got
		return err
	})
	if err != nil {
		return server.Appended{}, err
	}
	if first == nil {
		return server.Appended{Event: ev, Repeat: true}, nil
	}
	return server.RepeatOf(ev, server.NewIDRecord(first)), nil
}

func (s *Store) forget(stream string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.streams, stream)
}

// Read implements server.Store with one batched direct get.
func (s *Store) Read(ctx context.Context, stream string, after uint64, limit int) ([]protocol.Event, server.StreamInfo, error) {
	info, err := s.Info(ctx, stream)
	if err != nil || limit <= 0 || after >= info.Last {
		return nil, info, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	start := max(after+1, info.First)
	limit = min(limit, int(info.Last-start+1))
	events := make([]protocol.Event, 0, limit)
	err = s.directGet(ctx, s.streamName(stream), start, limit, func(seq uint64, data []byte) error {
		ev, err := decode(data, stream, info.Epoch, seq)
		if err == nil {
			events = append(events, ev)
		}
		return err
	})
	if err != nil {
		return nil, info, err
	}
	if len(events) > 0 && events[0].Seq > start {
		// Retention dropped the first events between the Info and the
		// read (a batched get steps over what is gone): the log now
		// begins later, which the caller must see to reset.
		info.First = events[0].Seq
	}
	if s.opts.MaxAge > 0 {
		// JetStream ages events by when it stored them; an event that
		// carries an older time of its own is past retention already.
		cutoff := time.Now().Add(-s.opts.MaxAge)
		drop := 0
		for drop < len(events) && events[drop].Time.Before(cutoff) {
			drop++
		}
		if drop > 0 {
			info.First = events[drop-1].Seq + 1
			events = events[drop:]
		}
	}
	return events, info, nil
}

// directGet asks JetStream for up to batch messages from seq on and
// calls each with every one, in order.
func (s *Store) directGet(ctx context.Context, name string, seq uint64, batch int, each func(seq uint64, data []byte) error) error {
	inbox := s.nc.NewRespInbox()
	sub, err := s.nc.SubscribeSync(inbox)
	if err != nil {
		return unavailable(fmt.Errorf("read %s: %w", name, err))
	}
	defer func() { _ = sub.Unsubscribe() }()
	req, _ := json.Marshal(map[string]any{"seq": seq, "batch": batch})
	if err := s.nc.PublishRequest("$JS.API.DIRECT.GET."+name, inbox, req); err != nil {
		return unavailable(fmt.Errorf("read %s: %w", name, err))
	}
	for range batch + 1 {
		msg, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return unavailable(fmt.Errorf("read %s from seq %d: %w", name, seq, err))
		}
		switch status := msg.Header.Get("Status"); status {
		case "":
		case "204": // end of batch
			return nil
		case "404": // nothing from seq on: retention got there first
			return nil
		default:
			return unavailable(fmt.Errorf("read %s from seq %d: status %s %s", name, seq, status, msg.Header.Get("Description")))
		}
		var n uint64
		if _, err := fmt.Sscan(msg.Header.Get(jetstream.SequenceHeader), &n); err != nil {
			return fmt.Errorf("read %s: message without a sequence", name)
		}
		if err := each(n, msg.Data); err != nil {
			return err
		}
	}
	return nil
}

// decode reads a stored event and gives it its place.
func decode(data []byte, stream, epoch string, seq uint64) (protocol.Event, error) {
	var ev protocol.Event
	if err := json.Unmarshal(data, &ev); err != nil {
		return ev, fmt.Errorf("decode event %s:%d: %w", stream, seq, err)
	}
	ev.Stream, ev.Epoch, ev.Seq = stream, epoch, seq
	return ev, nil
}

// followBatch is the most events one deliver call gets.
const followBatch = 256

// followInactive is how long NATS keeps a follow consumer no one pulls from.
const followInactive = 5 * time.Second

// Follow implements server.Follower with an ordered consumer, which
// JetStream recreates by itself after a lost connection, from where it
// left off. A stream deleted and made again (by an operator, or a NATS
// that lost its data) is a new history: Follow returns for the hub to
// start on it afresh if it finds one when it starts, or when the consumer
// reports trouble and a check finds one, or cannot be made.
func (s *Store) Follow(ctx context.Context, stream string, after protocol.Cursor, deliver func([]protocol.Event)) error {
	lctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	js, st, err := s.lookup(lctx, stream, false)
	cancel()
	if errors.Is(err, errNoStream) {
		// Nothing to follow until its first append makes it: wait for
		// that, then start again (in the epoch readers were told, unless
		// the empty epoch changed meanwhile).
		if err := s.awaitStream(ctx, stream); err != nil {
			return err
		}
		lctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
		js, st, err = s.lookup(lctx, stream, false)
		cancel()
	}
	if err != nil {
		return err
	}
	if js.epoch != after.Epoch {
		return fmt.Errorf("follow %s: the stream was made anew (epoch %s, not %s)", js.name, js.epoch, after.Epoch)
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   after.Seq + 1,
		// NATS drops a consumer nobody has pulled from for this long, so
		// one this node could not delete (a timeout on the way out, or the
		// one an ordered consumer replaces after a reset) goes soon, not
		// after the library's five minutes. A consumer being consumed
		// always has a pull waiting and stays.
		InactiveThreshold: followInactive,
	})
	if err != nil {
		return unavailable(fmt.Errorf("follow %s: %w", js.name, err))
	}
	var pending []protocol.Event
	trouble := make(chan struct{}, 1)
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		meta, err := msg.Metadata()
		if err != nil {
			s.log.Error("follow: message without metadata", "stream", stream, "err", err)
			return
		}
		if ev, err := decode(msg.Data(), stream, js.epoch, meta.Sequence.Stream); err != nil {
			// Subscribers that read it from the store get the same error.
			s.log.Error("follow: skip undecodable event", "stream", stream, "seq", meta.Sequence.Stream, "err", err)
		} else {
			pending = append(pending, ev)
		}
		if len(pending) > 0 && (meta.NumPending == 0 || len(pending) >= followBatch) {
			deliver(pending)
			pending = pending[:0]
		}
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		s.log.Debug("follow", "stream", stream, "err", err)
		select {
		case trouble <- struct{}{}:
		default:
		}
	}))
	if err != nil {
		return unavailable(fmt.Errorf("follow %s: %w", js.name, err))
	}
	defer func() {
		cc.Stop()
		<-cc.Closed()
		// NATS keeps a stopped consumer until it has been inactive for a
		// while (minutes); let it go now, or the server holds one per
		// stream this node ever followed. Briefly, and only when NATS is
		// there: a shutdown must not wait on it.
		if info := cons.CachedInfo(); info != nil && s.nc.IsConnected() {
			dctx, cancel := context.WithTimeout(context.Background(), min(s.opts.Timeout, time.Second))
			if err := st.DeleteConsumer(dctx, info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				s.log.Debug("follow: delete consumer", "stream", stream, "err", err)
			}
			cancel()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-cc.Closed():
			return unavailable(fmt.Errorf("follow %s: consumer stopped", js.name))
		case <-trouble:
			lctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
			now, _, err := s.lookup(lctx, stream, false)
			cancel()
			switch {
			case errors.Is(err, errNoStream):
				return fmt.Errorf("follow %s: the stream is gone (its events aged out)", js.name)
			case err != nil:
				// Whether the stream is still this one is not known, and
				// the consumer may go on in another: start afresh.
				return fmt.Errorf("follow %s: check the stream after trouble: %w", js.name, err)
			case now.epoch != js.epoch:
				return fmt.Errorf("follow %s: the stream was made anew (epoch %s, was %s)", js.name, now.epoch, js.epoch)
			}
		}
	}
}
