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
	wg     sync.WaitGroup
	once   sync.Once
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
		// State changes go out on the subscription's goroutine, in order
		// with its events; a full channel makes it wait, as a full Events
		// channel would, until the feed is closed.
		opts.OnState = func(sc client.StateChange) {
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
