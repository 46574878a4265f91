package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/pushd/push/client"
	"github.com/pushd/push/internal/backoff"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/tui"
)

// runPlain prints the room's events and sends the lines of standard input
// once the room is joined. It reads standard input from the start, and
// waits for pushd when it is not up yet, as for a reconnect. At the end of
// input, once every line is sent, it prints the room up to then (as far
// as pushd can be reached) and returns, unless --follow: then it goes on
// until interrupted or the server refuses the subscription.
func (o *chatOptions) runPlain(ctx context.Context, a *app, g *globalOptions, c *client.Client, tr client.Transport, name string) error {
	in := readInput(a.in)
	defer in.stop()
	since, err := o.waitForRoom(ctx, a, c, name, in)
	if err != nil {
		return err
	}
	room := tui.FeedStream{Stream: client.Room(name), Opts: client.SubscribeOptions{MaxBackoff: maxBackoff, Transport: tr, Since: since, User: g.user}}
	f := tui.StartFeed(ctx, c, room)
	defer f.Close()
	p := a.printer(g)
	inputDone := make(chan sendResult, 1)
	// The last event printed; at first, where the subscription starts.
	last, _ := protocol.ParseCursor(room.Opts.Since)
	snd := &sender{c: c, f: f, room: name, waiting: make(map[string]chan struct{})}
	go func() { inputDone <- snd.sendLines(ctx, a, in) }()
	var (
		sent    sendResult
		target  *protocol.Cursor // done once the room is printed up to here
		timeout <-chan time.Time
	)
	for {
		select {
		case u, ok := <-f.Updates():
			if !ok {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return f.Err()
			}
			p.update(u)
			if p.err != nil {
				return nil // nobody reads any more (a closed pipe): done
			}
			if u.Event != nil {
				last = u.Event.Cursor()
				snd.echo(u.Event.ID)
			}
		case sent = <-inputDone:
			inputDone = nil
			if sent.offline != nil && (sent.failed+sent.unconfirmed > 0 || !o.follow) {
				return sent.err() // the room is out of reach: nothing more to print
			}
			if o.follow || sent.stopped {
				continue
			}
			// Everything sent is in the room by now: print up to here,
			// if pushd can say where that is; it may be away again, and
			// the lines are sent whatever it is.
			cur, err := c.Cursor(ctx, room.Stream)
			if err != nil {
				return sent.err()
			}
			target = &cur
			t := time.NewTimer(drainWait)
			defer t.Stop()
			timeout = t.C
		case <-timeout:
			return sent.err()
		}
		if target != nil && last.Epoch == target.Epoch && last.Seq >= target.Seq {
			return sent.err()
		}
	}
}

// drainWait bounds the wait, at the end of input, for the room's events up
// to the last one sent.
const drainWait = requestTimeout

// sendResult is how sending standard input went.
type sendResult struct {
	sent, failed int
	// unconfirmed counts the lines given up after a try that may have
	// stored them: pushd never confirmed them, and they may be in the
	// room.
	unconfirmed int
	readErr     error
	// stopped: it ended before the end of input, because the subscription
	// or the command did.
	stopped bool
	// offline: it ended before the end of input because the room stayed
	// out of reach for maxOffline; the lines waiting count as failed.
	offline error
}

// err is the command's error for it: nil when every line went out.
func (r sendResult) err() error {
	all := r.sent + r.failed + r.unconfirmed
	switch {
	case r.readErr != nil:
		return fmt.Errorf("read standard input: %w", r.readErr)
	case r.failed > 0 && r.unconfirmed > 0:
		return fmt.Errorf("%d of %d lines were not sent, and %d more not confirmed (they may be in the room)", r.failed, all, r.unconfirmed)
	case r.failed > 0:
		return fmt.Errorf("%d of %d lines were not sent", r.failed, all)
	case r.unconfirmed > 0:
		return fmt.Errorf("%d of %d lines were not confirmed (they may be in the room)", r.unconfirmed, all)
	case r.offline != nil:
		return r.offline
	}
	return nil
}

// sendQueue is how many lines read from standard input may wait in the
// queue to be sent; with the line being sent and the one the reader holds
// until there is room, at most sendQueue+2 are read ahead. While the queue
// is full, standard input is not read: its writer waits, as on any full
// pipe, and no line is dropped.
const sendQueue = 1000

// maxSendTries bounds the tries of one line while the room stays connected:
// a line that keeps failing for a reason that retrying might fix (pushd
// busy, say) is given up after that many. A reconnect starts the count
// again: then the failures were the connection's. maxLineTries bounds the
// tries of a line in all, however often the connection drops.
const (
	maxSendTries = 5
	maxLineTries = 2 * maxSendTries
)

// maxOffline bounds how long lines wait for the room while it is out of
// reach: after that long without a connection the lines waiting are given
// up (reported not sent) and the chat ends. A variable for tests.
var maxOffline = 5 * time.Minute

// line is a line of standard input to send, with the id that makes its
// sending safe to repeat.
type line struct {
	text, id string
}

// sender sends the lines of standard input to a room.
type sender struct {
	c    *client.Client
	f    *tui.Feed // its main subscription is the room's
	room string

	mu sync.Mutex
	// waiting has a channel per line being sent, by id, closed when the
	// line's message comes back in the room.
	waiting map[string]chan struct{}
}

// expect returns a channel closed when the message with id comes back in
// the room, until forget.
func (s *sender) expect(id string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan struct{})
	s.waiting[id] = ch
	return ch
}

func (s *sender) forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.waiting, id)
}

// echo is told the id of each event the room's subscription delivers.
func (s *sender) echo(id string) {
	if id == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch, ok := s.waiting[id]; ok {
		close(ch)
		delete(s.waiting, id)
	}
}

// offlineError is the end of a wait for the room that lasted maxOffline.
type offlineError struct {
	room string
	d    time.Duration
}

func (e *offlineError) Error() string {
	return fmt.Sprintf("could not reach room/%s for %v", e.room, e.d)
}

// lineOutcome is how sending one line ended.
type lineOutcome int

const (
	lineSent        lineOutcome = iota // stored: confirmed, or seen in the room
	lineNotSent                        // not stored
	lineUnconfirmed                    // given up after a try that may have stored it
	lineStopped                        // the subscription, the feed or the command ended first
)

// input reads the lines of standard input ahead, into a queue of
// sendQueue lines, from the start of the chat: lines written before pushd
// is up wait there as lines read while it reconnects do.
type input struct {
	lines chan line     // closed at the end of input
	read  chan struct{} // closed at the end of input, after err is set
	err   error         // why reading ended, if not at the end of input
	done  chan struct{} // closed by stop
}

// readInput starts reading r into the queue.
func readInput(r io.Reader) *input {
	in := &input{lines: make(chan line, sendQueue), read: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(in.read)
		defer close(in.lines)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 64<<10)
		for sc.Scan() {
			text := strings.TrimRight(sc.Text(), "\r")
			if strings.TrimSpace(text) == "" {
				continue
			}
			select {
			case in.lines <- line{text: text, id: client.NewID()}:
			case <-in.done:
				return
			}
		}
		in.err = sc.Err()
	}()
	return in
}

// stop stops reading (once the reader holds a line it cannot queue).
func (in *input) stop() { close(in.done) }

// ended reports whether the input has ended.
func (in *input) ended() bool { return isClosed(in.read) }

// waitForRoom returns where the room's subscription starts (--history
// events back), waiting for pushd while it cannot be reached, with the
// backoff of a reconnect: it says so once on standard error, and gives up
// as a reconnect does, after maxOffline, once lines wait to be sent (or
// the input ended without any, unless --follow). A refusal is returned at
// once.
func (o *chatOptions) waitForRoom(ctx context.Context, a *app, c *client.Client, room string, in *input) (string, error) {
	bo := backoff.New(backoff.Policy{Min: client.DefaultMinBackoff, Max: maxBackoff})
	var since time.Time
	for {
		cur, err := historySince(ctx, c, client.Room(room), o.history)
		if err == nil || !client.Retryable(err) || ctx.Err() != nil {
			return cur, err
		}
		now := time.Now()
		if since.IsZero() {
			since = now
			fmt.Fprintf(a.errOut, "pushtui: waiting for pushd: %s\n", explain(err, c.BaseURL()))
		}
		if waiting := len(in.lines); now.Sub(since) >= maxOffline && (waiting > 0 || in.ended() && !o.follow) {
			off := &offlineError{room: room, d: maxOffline}
			if waiting > 0 {
				fmt.Fprintf(a.errOut, "pushtui: not sent: %d %s: %v\n", waiting, plural(waiting, "line", "lines"), off)
			}
			return "", off
		}
		if !backoff.Sleep(ctx, bo.NextAfter(0, client.RetryAfter(err))) {
			return "", ctx.Err()
		}
	}
}

// sendLines sends each non-empty line of standard input to the room, in
// order, while the room's subscription is connected: the user is in the
// room before anything they send, and a line read while it is
// reconnecting waits, with the lines after it, until it is back. Each
// line has an id, so a send that failed for a reason that retrying can
// fix (no answer, a timeout, 408, 429, 5xx) is tried again, once
// connected, with no risk of storing it twice; a line the server refuses
// (400, 413, ...) is reported on standard error, counted as not sent, and
// the next one goes on. Lines are read ahead into a queue of sendQueue
// lines. It returns at the end of input once the room was joined and every
// line read is sent or given up, or early: stopped when the subscription,
// the feed or ctx ends, offline when the room was out of reach for
// maxOffline while lines waited (they are given up).
func (s *sender) sendLines(ctx context.Context, a *app, in *input) sendResult {
	lines, read := in.lines, in.read
	var r sendResult
	offline := func(err error, waiting int) sendResult {
		r.failed += waiting
		r.offline = err
		if waiting > 0 {
			fmt.Fprintf(a.errOut, "pushtui: not sent: %d %s: %v\n", waiting, plural(waiting, "line", "lines"), err)
		}
		return r
	}
	for {
		_, stopped, err := s.connected(ctx, nil)
		if stopped {
			r.stopped = true
			return r
		}
		if err == nil {
			break
		}
		select {
		case <-read:
			return offline(err, len(lines))
		default:
			if n := len(lines); n > 0 {
				return offline(err, n)
			}
			// No line waits to be given up: wait on.
		}
	}
	for l := range lines {
		outcome, err := s.sendLine(ctx, l)
		var off *offlineError
		switch {
		case outcome == lineStopped:
			r.stopped = true
			return r
		case outcome == lineSent:
			r.sent++
		case outcome == lineNotSent && errors.As(err, &off):
			return offline(err, 1+len(lines))
		case outcome == lineUnconfirmed:
			r.unconfirmed++
			fmt.Fprintln(a.errOut, "pushtui: not confirmed:", explain(err, s.c.BaseURL()))
			if errors.As(err, &off) {
				return offline(err, len(lines))
			}
		default:
			r.failed++
			fmt.Fprintln(a.errOut, "pushtui: not sent:", explain(err, s.c.BaseURL()))
		}
	}
	r.readErr = in.err
	return r
}

// sendLine sends one line once the room is connected, trying again with
// the same id while the failure is one retrying can fix (see sendLines),
// at most maxSendTries times a connection and maxLineTries in all. The
// line is sent once a try is answered, or once its message comes back in
// the room, whichever comes first. When it gives up, the line counts as
// not sent if no try can have stored it, else as unconfirmed; err says
// why (an *offlineError when the room was out of reach for maxOffline).
func (s *sender) sendLine(ctx context.Context, l line) (lineOutcome, error) {
	echoed := s.expect(l.id)
	defer s.forget(l.id)
	unsure := false // a try may have stored the line
	giveUp := func(err error) (lineOutcome, error) {
		if unsure && (client.Retryable(err) || errors.As(err, new(*offlineError))) {
			return lineUnconfirmed, err
		}
		return lineNotSent, err
	}
	tries, all, conn := 0, 0, 0
	for {
		n, stopped, err := s.connected(ctx, echoed)
		switch {
		case isClosed(echoed):
			return lineSent, nil
		case stopped:
			return lineStopped, nil
		case err != nil:
			return giveUp(err)
		}
		if n != conn {
			tries, conn = 0, n
		}
		err = s.publish(ctx, l, echoed)
		switch {
		case err == nil, isClosed(echoed):
			return lineSent, nil
		case ctx.Err() != nil:
			return lineStopped, nil
		}
		unsure = unsure || client.MayHaveApplied(err)
		tries++
		all++
		if !client.Retryable(err) || tries >= maxSendTries || all >= maxLineTries {
			return giveUp(err)
		}
		t := time.NewTimer(sendBackoff(tries, err))
		select {
		case <-t.C:
		case <-echoed:
		case <-s.f.Done():
		case <-s.f.Context().Done():
		case <-ctx.Done():
		}
		t.Stop()
	}
}

// publish makes one try of l, given up early when its message comes back
// in the room meanwhile.
func (s *sender) publish(ctx context.Context, l line, echoed <-chan struct{}) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.f.Context(), cancel)
	defer stop()
	go func() {
		select {
		case <-echoed:
			cancel()
		case <-ctx.Done():
		}
	}()
	_, err := s.c.Publish(ctx, s.room, l.text, client.WithID(l.id), client.WithTries(1))
	return err
}

// isClosed reports whether ch is closed; a nil ch never is.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// connected waits until the room's subscription is connected, at most
// maxOffline, and returns the number of its connections so far; stopped
// when the subscription, the feed or ctx ended first, an *offlineError
// after maxOffline. It returns at once, neither stopped nor with an error,
// once echoed is closed.
func (s *sender) connected(ctx context.Context, echoed <-chan struct{}) (n int, stopped bool, err error) {
	wctx, cancel := context.WithTimeout(ctx, maxOffline)
	defer cancel()
	if echoed != nil {
		go func() {
			select {
			case <-echoed:
				cancel()
			case <-wctx.Done():
			}
		}()
	}
	n, ok := s.f.Connected(wctx)
	switch {
	case ok:
		return n, false, nil
	case isClosed(echoed):
		return 0, false, nil
	case ctx.Err() == nil && s.f.Context().Err() == nil && wctx.Err() != nil:
		select {
		case <-s.f.Done():
		default:
			return 0, false, &offlineError{room: s.room, d: maxOffline}
		}
	}
	return 0, true, nil
}

// plural returns one when n is 1, else many.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// sendBackoff is the pause after the n-th failed try of a line (from 1):
// full jitter up to 250 ms doubling up to maxBackoff, or the server's
// Retry-After when longer (at most a minute).
func sendBackoff(n int, err error) time.Duration {
	return sendPolicy.Delay(n, 0, client.RetryAfter(err))
}

// sendPolicy is the schedule of a line's tries.
var sendPolicy = backoff.Policy{Min: 250 * time.Millisecond, Max: maxBackoff, MaxRetryAfter: time.Minute}
