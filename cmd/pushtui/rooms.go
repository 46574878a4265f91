package main

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushd/push/client"
	"github.com/pushd/push/internal/backoff"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/tui"
)

// roomsConn is the chat screen's link to the server: a subscription per
// joined room and one to the tasks stream, merged into one channel of
// updates, and the client's requests. It remembers each room's cursor
// (memory) and starts a room where the user left it.
type roomsConn struct {
	c      *client.Client
	o      roomStart
	mem    *memory // nil: nothing is remembered
	ch     chan tui.Update
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	rooms map[string]*roomFollow
}

// roomFollow is a joined room's subscription.
type roomFollow struct {
	cancel context.CancelFunc
	// settled is closed when the first try to follow the room has an
	// outcome: connected, failed (it is tried again), or refused (err).
	settled chan struct{}
	once    sync.Once
	err     error
}

// settle records the outcome of the first try; err when refused.
func (rf *roomFollow) settle(err error) {
	rf.once.Do(func() {
		rf.err = err
		close(rf.settled)
	})
}

var _ tui.RoomsConn = (*roomsConn)(nil)

// roomStart says where a room's events begin.
type roomStart struct {
	transport client.Transport
	user      string
	// history is how many of the room's latest events a room shows when
	// it is not resumed, and after a reset.
	history int
	// sinceLast resumes a room where the user left it, showing at most
	// missed of the events since.
	sinceLast bool
	missed    int
}

// memorySaveEvery is how often the cursors seen are saved while the chat
// runs; Close saves them too.
const memorySaveEvery = 5 * time.Second

// newRoomsConn follows the tasks stream and is ready to join rooms, until
// Close.
func newRoomsConn(ctx context.Context, c *client.Client, o roomStart, mem *memory) *roomsConn {
	ctx, cancel := context.WithCancel(ctx)
	rc := &roomsConn{c: c, o: o, mem: mem, ch: make(chan tui.Update, 256), ctx: ctx, cancel: cancel, rooms: map[string]*roomFollow{}}
	tasks := c.Subscribe(ctx, client.Tasks(), client.SubscribeOptions{MaxBackoff: maxBackoff, Transport: o.transport,
		OnState: func(sc client.StateChange) { rc.send(ctx, status(protocol.TasksStream, sc)) }})
	rc.wg.Go(func() {
		for ev := range tasks.Events() {
			rc.send(ctx, tui.Update{Event: &ev})
		}
	})
	if mem != nil {
		rc.wg.Go(func() {
			t := time.NewTicker(memorySaveEvery)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					_ = mem.save() // tried again at the next tick, and at Close
				case <-ctx.Done():
					return
				}
			}
		})
	}
	return rc
}

// status is the update for a subscription's state change.
func status(stream string, sc client.StateChange) tui.Update {
	return tui.Update{Status: &tui.Status{Stream: stream, State: sc.State, Transport: string(sc.Transport),
		Attempt: sc.Attempt, RetryIn: sc.RetryIn, Err: sc.Err}}
}

// send passes u on unless ctx (the room's or the conn's) has ended.
func (rc *roomsConn) send(ctx context.Context, u tui.Update) {
	select {
	case rc.ch <- u:
	case <-ctx.Done():
	}
}

func (rc *roomsConn) Updates() <-chan tui.Update { return rc.ch }

// Close stops every subscription, saves the cursors seen and closes the
// channel of updates. It returns the error of the save.
func (rc *roomsConn) Close() error {
	rc.mu.Lock()
	rc.cancel() // under mu: a Join after this starts nothing
	rc.mu.Unlock()
	go func() {
		for range rc.ch { // let the goroutines' last sends go
		}
	}()
	rc.wg.Wait()
	close(rc.ch)
	return rc.mem.save()
}

func (rc *roomsConn) Join(room string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if _, ok := rc.rooms[room]; ok || rc.ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithCancel(rc.ctx)
	rf := &roomFollow{cancel: cancel, settled: make(chan struct{})}
	rc.rooms[room] = rf
	rc.wg.Go(func() { rc.follow(ctx, room, rf) })
}

func (rc *roomsConn) Part(room string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rf, ok := rc.rooms[room]; ok {
		rf.cancel()
		delete(rc.rooms, room)
	}
}

// started waits, at most d in all, until the first try to follow each
// room joined has an outcome, and returns the error of a room the server
// refused at once: the chat then fails with one line instead of drawing
// rooms that can only say they are closed.
func (rc *roomsConn) started(ctx context.Context, d time.Duration) error {
	rc.mu.Lock()
	var all []*roomFollow
	for _, rf := range rc.rooms {
		all = append(all, rf)
	}
	rc.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	for _, rf := range all {
		select {
		case <-rf.settled:
			if rf.err != nil {
				return rf.err
			}
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (rc *roomsConn) Send(ctx context.Context, room, id, text string) error {
	_, err := rc.c.Publish(ctx, room, text, client.WithID(id))
	return err
}

func (rc *roomsConn) Presence(ctx context.Context, room string) ([]string, error) {
	return rc.c.Presence(ctx, room)
}

func (rc *roomsConn) Tasks(ctx context.Context) ([]protocol.Task, error) { return rc.c.ListTasks(ctx) }

func (rc *roomsConn) Rooms(ctx context.Context) ([]protocol.RoomInfo, error) { return rc.c.Rooms(ctx) }

func (rc *roomsConn) ReadBefore(ctx context.Context, room string, before protocol.Cursor, limit int) (*protocol.Page, error) {
	return rc.c.ReadBefore(ctx, room, before, limit)
}

// follow follows room until ctx ends or the server refuses it: it learns
// where the room stands, says where its events begin (a Backlog), and
// subscribes from there. After a reset that would replay more than the
// history, it starts again from the history's start and says so.
func (rc *roomsConn) follow(ctx context.Context, room string, rf *roomFollow) {
	defer rf.settle(nil)
	stream := protocol.RoomStream(room)
	head, err := rc.head(ctx, room, rf)
	if err != nil {
		rf.settle(err)
		if ctx.Err() == nil {
			rc.send(ctx, tui.Update{Status: &tui.Status{Stream: stream, State: client.StateClosed, Transport: string(rc.o.transport), Err: err}})
		}
		return
	}
	since, b := rc.start(room, head)
	for restarted := false; ; restarted = true {
		rc.send(ctx, tui.Update{Backlog: &b})
		var replaced atomic.Bool
		sub := rc.c.Subscribe(ctx, client.Room(room), client.SubscribeOptions{MaxBackoff: maxBackoff, Transport: rc.o.transport,
			Since: since.String(), User: rc.o.user,
			OnState: func(sc client.StateChange) {
				switch sc.State {
				case client.StateClosed:
					rf.settle(sc.Err)
				case client.StateConnected, client.StateReconnecting:
					rf.settle(nil)
				}
				// A subscription begun again after a reset is the same
				// connection to the reader, whose screen says connected.
				if !replaced.Load() && !(restarted && sc.State == client.StateConnecting) {
					rc.send(ctx, status(stream, sc))
				}
			}})
		var next *tui.Backlog
		for ev := range sub.Events() {
			rc.send(ctx, tui.Update{Event: &ev})
			rc.mem.note(room, ev.Cursor())
			if ev.Type == protocol.TypeReset {
				if next = rc.afterReset(ctx, room, ev); next != nil {
					since = protocol.Cursor{Epoch: next.Head.Epoch, Seq: next.Head.Seq - uint64(rc.o.history)}
					break
				}
			}
		}
		replaced.Store(next != nil)
		sub.Close()
		if next == nil {
			return
		}
		b = *next
	}
}

// head returns where room stands now, trying again (as a reconnect would,
// and saying so) while the server is out of reach; an error when the
// server refuses, or ctx ends.
func (rc *roomsConn) head(ctx context.Context, room string, rf *roomFollow) (protocol.Cursor, error) {
	stream := protocol.RoomStream(room)
	bo := backoff.New(backoff.Policy{Min: client.DefaultMinBackoff, Max: maxBackoff})
	for {
		cur, err := rc.c.Cursor(ctx, client.Room(room))
		if err == nil || !client.Retryable(err) || ctx.Err() != nil {
			return cur, err
		}
		rf.settle(nil) // out of reach: tried again, as a reconnect
		d := bo.NextAfter(0, client.RetryAfter(err))
		rc.send(ctx, tui.Update{Status: &tui.Status{Stream: stream, State: client.StateReconnecting,
			Transport: string(rc.o.transport), Attempt: bo.Tries() + 1, RetryIn: d, Err: err}})
		if !backoff.Sleep(ctx, d) {
			return cur, ctx.Err()
		}
	}
}

// start returns where room's subscription begins, given where the room
// stands: where the user left it (at most missed events back), or the
// history's start.
func (rc *roomsConn) start(room string, head protocol.Cursor) (protocol.Cursor, tui.Backlog) {
	b := tui.Backlog{Stream: protocol.RoomStream(room), Head: head}
	from := head.Seq - min(uint64(rc.o.history), head.Seq)
	last, ok := rc.mem.last(room)
	switch {
	case !rc.o.sinceLast || !ok:
	case last.Epoch == head.Epoch && last.Seq <= head.Seq:
		// What was missed, after the history before it (what the user
		// saw last), or its newest when there is too much.
		b.Resumed, b.Missed, b.Last = true, int(head.Seq-last.Seq), last
		from = min(from, last.Seq)
		if b.Missed > rc.o.missed {
			from = head.Seq - uint64(rc.o.missed)
			b.Skipped = b.Missed - rc.o.missed
		}
	case last.Epoch != head.Epoch:
		b.Reset, b.Skipped = protocol.ResetEpochChanged, int(from)
	default:
		b.Reset, b.Skipped = protocol.ResetCursorAhead, int(from)
	}
	return protocol.Cursor{Epoch: head.Epoch, Seq: from}, b
}

// afterReset returns, when the events a reset would replay are more than
// the history, where to begin again instead: the history's start, the
// events before it skipped. Nil when the replay is short, or the room's
// head cannot be had (the replay then goes on).
func (rc *roomsConn) afterReset(ctx context.Context, room string, reset protocol.Event) *tui.Backlog {
	head, err := rc.c.Cursor(ctx, client.Room(room))
	if err != nil || head.Epoch != reset.Epoch || head.Seq < reset.Seq || head.Seq-reset.Seq <= uint64(rc.o.history) {
		return nil
	}
	return &tui.Backlog{Stream: protocol.RoomStream(room), Head: head, Skipped: int(head.Seq - uint64(rc.o.history) - reset.Seq)}
}
