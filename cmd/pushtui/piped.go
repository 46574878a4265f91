package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pushd/push/client"
	"github.com/pushd/push/internal/backoff"
	"github.com/pushd/push/protocol"
)

// runPlain prints the room's events and sends the lines of standard input
// once the room is joined. At the end of input, once every line is sent,
// it prints the room up to then and returns, unless --follow: then it goes
// on until interrupted or the server refuses the subscription.
func (o *chatOptions) runPlain(ctx context.Context, a *app, g *globalOptions, c *client.Client, room subSpec) error {
	f := startFeed(ctx, c, room)
	defer f.Close()
	p := a.printer(g)
	inputDone := make(chan sendResult, 1)
	// The last event printed; at first, where the subscription starts.
	last, _ := protocol.ParseCursor(room.opts.Since)
	snd := &sender{c: c, f: f, room: o.room}
	go func() { inputDone <- snd.sendLines(ctx, a) }()
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
			}
		case sent = <-inputDone:
			inputDone = nil
			if sent.offline != nil && (sent.failed > 0 || !o.follow) {
				return sent.err() // the room is out of reach: nothing more to print
			}
			if o.follow || sent.stopped {
				continue
			}
			// Everything sent is in the room by now: print up to here.
			cur, err := c.Cursor(ctx, room.stream)
			if err != nil {
				return err
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
	readErr      error
	// stopped: it ended before the end of input, because the subscription
	// or the command did.
	stopped bool
	// offline: it ended before the end of input because the room stayed
	// out of reach for maxOffline; the lines waiting count as failed.
	offline error
}

// err is the command's error for it: nil when every line went out.
func (r sendResult) err() error {
	switch {
	case r.readErr != nil:
		return fmt.Errorf("read standard input: %w", r.readErr)
	case r.failed > 0:
		return fmt.Errorf("%d of %d lines were not sent", r.failed, r.sent+r.failed)
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

// sender sends the lines of standard input to a room.
type sender struct {
	c    *client.Client
	f    *feed // its main subscription is the room's
	room string
	// after is a position in the room before the next line: that of the
	// last line sent, or the room's live end taken before the line's first
	// try; none at first and after a line is given up (a copy of it may be
	// stored after all, and must not be taken for the next line's).
	after protocol.Cursor
}

// offlineError is the end of a wait for the room that lasted maxOffline.
type offlineError struct {
	room string
	d    time.Duration
}

func (e *offlineError) Error() string {
	return fmt.Sprintf("could not reach room/%s for %v", e.room, e.d)
}

// sendLines sends each non-empty line of standard input to the room, in
// order, while the room's subscription is connected: the user is in the
// room before anything they send, and a line read while it is
// reconnecting waits, with the lines after it, until it is back. A send
// that failed for a reason that retrying can fix (no answer, a timeout,
// 408, 429, 5xx) is tried again after a pause, once connected; a line the
// server refuses (400, 413, ...) is reported on standard error, counted as
// not sent, and the next one goes on. Lines are read ahead into a queue of
// sendQueue lines. It returns at the end of input once the room was joined
// and every line read is sent or given up, or early: stopped when the
// subscription, the feed or ctx ends, offline when the room was out of
// reach for maxOffline while lines waited (they are given up).
func (s *sender) sendLines(ctx context.Context, a *app) sendResult {
	lines := make(chan string, sendQueue)
	done := make(chan struct{})
	defer close(done)
	read := make(chan struct{}) // closed at the end of input
	var readErr error           // set before lines is closed
	go func() {
		defer close(read)
		defer close(lines)
		sc := bufio.NewScanner(a.in)
		sc.Buffer(make([]byte, 64<<10), 64<<10)
		for sc.Scan() {
			text := strings.TrimRight(sc.Text(), "\r")
			if strings.TrimSpace(text) == "" {
				continue
			}
			select {
			case lines <- text:
			case <-done:
				return
			}
		}
		readErr = sc.Err()
	}()
	var r sendResult
	var off *offlineError
	offline := func(err error, waiting int) sendResult {
		r.failed += waiting
		r.offline = err
		if waiting > 0 {
			fmt.Fprintf(a.errOut, "pushtui: not sent: %d %s: %v\n", waiting, plural(waiting, "line", "lines"), err)
		}
		return r
	}
	for {
		_, stopped, err := s.connected(ctx)
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
	for text := range lines {
		stopped, err := s.sendLine(ctx, text)
		switch {
		case stopped:
			r.stopped = true
			return r
		case errors.As(err, &off):
			return offline(err, 1+len(lines))
		case err != nil:
			r.failed++
			fmt.Fprintln(a.errOut, "pushtui: not sent:", explain(err, s.c.BaseURL()))
		default:
			r.sent++
		}
	}
	r.readErr = readErr
	return r
}

// sendLine sends one line once the room is connected, trying again while
// the failure is one retrying can fix (see sendLines), at most maxSendTries
// times a connection and maxLineTries in all. Before the first try it takes
// the room's live end, unless the last line sent marks a place already;
// before sending again after a failure that may have come after the server
// stored the line (a cut connection or answer, a timeout, a 5xx), it looks
// for the line in the room after there, so as not to send it twice. It
// returns the error that made it give up on the line (an *offlineError
// when the room was out of reach for maxOffline), or stopped when the
// subscription, the feed or ctx ended first.
func (s *sender) sendLine(ctx context.Context, text string) (stopped bool, err error) {
	unsure := false // a try may have stored the line
	tries, all, conn := 0, 0, 0
	for {
		n, stopped, err := s.connected(ctx)
		if stopped || err != nil {
			return stopped, err
		}
		if n != conn {
			tries, conn = 0, n
		}
		if s.after.Epoch == "" {
			var cur protocol.Cursor
			if cur, err = s.c.Cursor(ctx, client.Room(s.room)); err == nil {
				s.after = cur
			}
		}
		if err == nil && unsure {
			var found *protocol.Cursor
			if found, err = s.stored(ctx, s.after, text); err == nil {
				if found != nil {
					s.after = *found
					return false, nil
				}
				unsure = false
			}
		}
		if err == nil && !unsure {
			var ev *protocol.Event
			if ev, err = s.c.Publish(ctx, s.room, text); err == nil {
				s.after = ev.Cursor()
				return false, nil
			}
			unsure = client.MayHaveApplied(err)
		}
		if ctx.Err() != nil {
			return true, nil
		}
		tries++
		all++
		if !client.Retryable(err) || tries >= maxSendTries || all >= maxLineTries {
			s.after = protocol.Cursor{}
			return false, err
		}
		t := time.NewTimer(sendBackoff(tries, err))
		select {
		case <-t.C:
		case <-s.f.subs[0].Done():
		case <-s.f.ctx.Done():
		case <-ctx.Done():
		}
		t.Stop()
	}
}

// connected waits until the room's subscription is connected, at most
// maxOffline, and returns the number of its connections so far; stopped
// when the subscription, the feed or ctx ended first, an *offlineError
// after maxOffline.
func (s *sender) connected(ctx context.Context) (n int, stopped bool, err error) {
	wctx, cancel := context.WithTimeout(ctx, maxOffline)
	defer cancel()
	n, ok := s.f.connected(wctx)
	switch {
	case ok:
		return n, false, nil
	case ctx.Err() == nil && s.f.ctx.Err() == nil && wctx.Err() != nil:
		select {
		case <-s.f.subs[0].Done():
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

// stored looks in the room, after the cursor before, for a message of this
// user with text (a send whose answer was lost) and returns its cursor, or
// nil when there is none.
func (s *sender) stored(ctx context.Context, before protocol.Cursor, text string) (*protocol.Cursor, error) {
	if before.Epoch == "" {
		return nil, nil // nowhere to look from: send again
	}
	// The text as the server stores it: JSON makes invalid UTF-8 valid.
	want := text
	if b, err := json.Marshal(text); err == nil {
		_ = json.Unmarshal(b, &want)
	}
	since := before.String()
	for range maxStoredPages {
		p, err := s.c.Poll(ctx, client.Room(s.room), client.PollOptions{Since: since})
		if err != nil {
			return nil, err
		}
		for _, e := range p.Events {
			if e.Type == protocol.TypeMessage && e.User == s.c.User() && e.Text == want {
				cur := e.Cursor()
				return &cur, nil
			}
		}
		if len(p.Events) < protocol.MaxPollEvents {
			break
		}
		since = p.Cursor
	}
	return nil, nil
}

// maxStoredPages bounds the pages of protocol.MaxPollEvents events that
// stored reads.
const maxStoredPages = 10

// sendBackoff is the pause after the n-th failed try of a line (from 1):
// full jitter up to 250 ms doubling up to maxBackoff, or the server's
// Retry-After when longer (at most a minute).
func sendBackoff(n int, err error) time.Duration {
	return sendPolicy.Delay(n, 0, client.RetryAfter(err))
}

// sendPolicy is the schedule of a line's tries.
var sendPolicy = backoff.Policy{Min: 250 * time.Millisecond, Max: maxBackoff, MaxRetryAfter: time.Minute}
