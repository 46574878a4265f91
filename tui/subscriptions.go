package tui

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/pushd/push/client"
)

// Feed merges the events and state changes of some subscriptions into one
// channel of Update: the Updates of a screen's Conn, and what the plain
// printers read. Close stops the subscriptions and closes the channel; so
// does the end of every subscription. The first subscription is the
// feed's main one (the room of a chat, the stream of a screen): Started,
// Connected and Done follow it.
type Feed struct {
	ch     chan Update
	ctx    context.Context
	cancel context.CancelFunc
	subs   []*client.Subscription
	// conn follows whether the main subscription is connected; settled
	// is closed when its first try has an outcome: connected, failed (it
	// will retry), or ended.
	conn    *connWatch
	settled chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
}

// FeedStream is one stream a Feed follows, and the options of its
// subscription; the Feed sets their OnState.
type FeedStream struct {
	Stream client.Stream
	Opts   client.SubscribeOptions
}

// StartFeed subscribes with c to every one of streams, the first the
// main one, until ctx ends or Close.
func StartFeed(ctx context.Context, c *client.Client, streams ...FeedStream) *Feed {
	ctx, cancel := context.WithCancel(ctx)
	f := &Feed{ch: make(chan Update, 256), ctx: ctx, cancel: cancel, conn: newConnWatch(), settled: make(chan struct{})}
	for i, fs := range streams {
		name := fs.Stream.Name()
		opts := fs.Opts
		main, isSettled := i == 0, false
		// State changes go out on the subscription's goroutine, in order
		// with its events; a full channel makes it wait, as a full Events
		// channel would, until the feed is closed. For the main
		// subscription, conn and settled are told first, so that waiting
		// on them needs no reader.
		opts.OnState = func(sc client.StateChange) {
			if main {
				if sc.State != client.StateConnecting && !isSettled {
					isSettled = true
					close(f.settled)
				}
				f.conn.set(sc.State == client.StateConnected)
			}
			st := Status{Stream: name, State: sc.State, Transport: string(sc.Transport),
				Attempt: sc.Attempt, RetryIn: sc.RetryIn, Err: sc.Err}
			f.send(Update{Status: &st})
		}
		sub := c.Subscribe(ctx, fs.Stream, opts)
		f.subs = append(f.subs, sub)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			for ev := range sub.Events() {
				f.send(Update{Event: &ev})
			}
		}()
	}
	go func() {
		f.wg.Wait()
		close(f.ch)
	}()
	return f
}

// send passes u on unless the feed is closed.
func (f *Feed) send(u Update) {
	select {
	case f.ch <- u:
	case <-f.ctx.Done():
	}
}

// Updates returns the merged channel; it is closed once every subscription
// has ended.
func (f *Feed) Updates() <-chan Update { return f.ch }

// Close stops every subscription and waits until their goroutines and the
// feed's are gone.
func (f *Feed) Close() {
	f.once.Do(func() {
		f.cancel()
		for _, s := range f.subs {
			s.Close()
		}
		f.wg.Wait()
		for range f.ch { // the closing goroutine is done once ch is closed
		}
	})
}

// Context is done once the feed is closed, or the context it started
// with has ended.
func (f *Feed) Context() context.Context { return f.ctx }

// Done is closed when the main subscription has ended.
func (f *Feed) Done() <-chan struct{} { return f.subs[0].Done() }

// Err returns the first error a subscription ended with by itself (a
// refusal by the server), not counting Close.
func (f *Feed) Err() error {
	for _, s := range f.subs {
		if err := s.Err(); err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	return nil
}

// Started waits, at most d, until the main subscription's first try has
// an outcome, and returns the error that ended the subscription if the
// server refused it at once: a command then fails with one line instead of
// drawing a screen that can only say it is closed. It returns nil once the
// subscription is connected or retrying, or still trying after d.
func (f *Feed) Started(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-f.settled:
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	// The subscription sets its error before it reports closed.
	return f.subs[0].Err()
}

// Connected waits until the main subscription is connected (at once if it
// is) and returns the number of its connections so far; false when it
// ended first, or the feed or ctx did.
func (f *Feed) Connected(ctx context.Context) (int, bool) {
	up, n := f.conn.now()
	select {
	case <-up:
		return n, ctx.Err() == nil && f.ctx.Err() == nil
	case <-f.subs[0].Done():
	case <-f.ctx.Done():
	case <-ctx.Done():
	}
	return 0, false
}

// connWatch follows whether a subscription is connected.
type connWatch struct {
	mu sync.Mutex
	// up is closed while connected; a new one is made on each drop.
	up chan struct{}
	is bool
	n  int // connections so far
}

func newConnWatch() *connWatch { return &connWatch{up: make(chan struct{})} }

// set records a state: connected or not.
func (w *connWatch) set(connected bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case connected && !w.is:
		w.is = true
		w.n++
		close(w.up)
	case !connected && w.is:
		w.is = false
		w.up = make(chan struct{})
	}
}

// now returns a channel closed while connected (already, if it is), and
// the number of connections so far.
func (w *connWatch) now() (<-chan struct{}, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.up, w.n
}
