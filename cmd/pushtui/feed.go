package main

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/pushd/push/client"
	"github.com/pushd/push/tui"
)

// feed merges the events and state changes of some subscriptions into one
// channel of tui.Update, which is what the screens and the plain printers
// read. Close stops the subscriptions and closes the channel; so does the
// end of every subscription.
type feed struct {
	ch     chan tui.Update
	ctx    context.Context
	cancel context.CancelFunc
	subs   []*client.Subscription
	// up[i] is closed when subscription i first connects; settled[i] when
	// its first try has an outcome: connected, failed (it will retry), or
	// ended.
	up, settled []chan struct{}
	wg          sync.WaitGroup
	once        sync.Once
}

// maxBackoff caps the wait between reconnects: a person is watching, and a
// restarted server should be back on screen within seconds.
const maxBackoff = 5 * time.Second

// subSpec is one stream to follow.
type subSpec struct {
	stream client.Stream
	opts   client.SubscribeOptions
}

// startFeed subscribes to every spec with c.
func startFeed(ctx context.Context, c *client.Client, specs ...subSpec) *feed {
	ctx, cancel := context.WithCancel(ctx)
	f := &feed{ch: make(chan tui.Update, 256), ctx: ctx, cancel: cancel}
	for _, sp := range specs {
		name := sp.stream.Name()
		opts := sp.opts
		up, settled := make(chan struct{}), make(chan struct{})
		f.up, f.settled = append(f.up, up), append(f.settled, settled)
		isUp, isSettled := false, false
		// State changes go out on the subscription's goroutine, in order
		// with its events; a full channel makes it wait, as a full Events
		// channel would, until the feed is closed. up and settled are
		// closed first, so that waiting for them needs no reader.
		opts.OnState = func(sc client.StateChange) {
			if sc.State != client.StateConnecting && !isSettled {
				isSettled = true
				close(settled)
			}
			if sc.State == client.StateConnected && !isUp {
				isUp = true
				close(up)
			}
			st := tui.Status{Stream: name, State: sc.State, Transport: string(sc.Transport),
				Attempt: sc.Attempt, RetryIn: sc.RetryIn, Err: sc.Err}
			f.send(tui.Update{Status: &st})
		}
		sub := c.Subscribe(ctx, sp.stream, opts)
		f.subs = append(f.subs, sub)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			for ev := range sub.Events() {
				f.send(tui.Update{Event: &ev})
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
func (f *feed) send(u tui.Update) {
	select {
	case f.ch <- u:
	case <-f.ctx.Done():
	}
}

// Updates returns the merged channel; it is closed once every subscription
// has ended.
func (f *feed) Updates() <-chan tui.Update { return f.ch }

// Close stops every subscription and waits until their goroutines and the
// feed's are gone.
func (f *feed) Close() {
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

// Err returns the first error a subscription ended with by itself (a
// refusal by the server), not counting Close.
func (f *feed) Err() error {
	for _, s := range f.subs {
		if err := s.Err(); err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	return nil
}

// startupWait bounds how long a screen waits for its first connection
// before it is drawn (it then shows the connection's progress itself).
const startupWait = 5 * time.Second

// started waits, at most d, until the first subscription's first try has
// an outcome, and returns the error that ended the subscription if the
// server refused it at once: a command then fails with one line instead of
// drawing a screen that can only say it is closed. It returns nil once the
// subscription is connected or retrying, or still trying after d.
func (f *feed) started(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-f.settled[0]:
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	// The subscription sets its error before it reports closed.
	return f.subs[0].Err()
}

// connected waits until subscription i has connected once and reports
// whether it did; false when it ended first, or the feed or ctx did.
func (f *feed) connected(ctx context.Context, i int) bool {
	select {
	case <-f.up[i]:
		return true
	case <-f.subs[i].Done():
	case <-f.ctx.Done():
	case <-ctx.Done():
	}
	select {
	case <-f.up[i]:
		return ctx.Err() == nil && f.ctx.Err() == nil
	default:
		return false
	}
}
