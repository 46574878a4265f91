package server

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushd/push/protocol"
)

// sink is how one streaming transport (WebSocket, SSE) sends to one
// subscriber; everything else about a subscriber is the pusher's.
type sink interface {
	// send writes a batch of events, in one system call where it can.
	send(batch []*entry) error
	// trySend writes a batch as send does but never waits for the socket
	// to take it. With rest nil and no error, the batch went out. With
	// rest set, it did not all go: rest, called on a goroutine that may
	// wait, writes what is left, and nothing else may be written before.
	trySend(batch []*entry) (rest func() error, err error)
	// ping keeps an idle connection alive.
	ping(ctx context.Context) error
	// end tells the client why the stream ends and closes the connection.
	end(reason, message string)
	// closeNow drops the connection.
	closeNow()
}

// pusher sends a streaming subscriber its events. It has no goroutine
// while the subscriber waits: at most one goroutine runs it at a time,
// and only while there is something to send (events, a ping, an end). When
// it has caught up it parks on the stream, and the next publish, its
// heartbeat timer, the shutdown or the end of the connection wakes it. So
// an idle connection costs its reader goroutine and a little memory.
//
// A wake queues the pusher on the server's run queue (runqueue.go), whose
// workers send what they can without waiting (poll); what may wait goes to
// a goroutine of the pusher's own (run), which lingers on a busy stream.
type pusher struct {
	s         *Server
	sub       *subscription
	sink      sink
	conn      net.Conn        // the raw connection, for write deadlines
	ctx       context.Context // ends with the connection
	transport string
	stream    string
	cleanup   func() // releases what the subscription holds; called once, at the end

	heartbeat   *time.Timer
	pingDue     atomic.Bool
	expiry      *time.Timer // nil when the token does not expire
	expired     atomic.Bool
	lingerTimer *time.Timer // used by the running goroutine only
	deadline    time.Time   // the connection's write deadline; running goroutine only
	// What a run queue worker leaves to run, running goroutine only: the
	// rest of a write it began (for batch), or what collect said.
	rest      func() error
	restBatch []*entry
	collected error

	mu      sync.Mutex
	running bool // a goroutine is in run
	again   bool // woken while running: look once more before parking
	done    bool
}

// startPusher runs a subscriber on an upgraded connection. read is the
// connection's reader loop: it returns when the connection has ended, and
// the subscriber ends then too.
func (s *Server) startPusher(read func(), sub *subscription, sk sink, conn net.Conn, transport, stream string, cleanup func()) {
	ctx, cancel := context.WithCancel(context.Background())
	p := &pusher{s: s, sub: sub, sink: sk, conn: conn, ctx: ctx, transport: transport, stream: stream, cleanup: cleanup}
	sub.st.pushers.Add(1)
	// Everything the pusher's goroutine uses is set before anything can
	// start it.
	p.heartbeat = time.AfterFunc(s.cfg.Heartbeat, func() {
		p.pingDue.Store(true)
		p.wake()
	})
	if !sub.expires.IsZero() {
		// A runtime timer, not a goroutine: an idle subscriber still has
		// none of its own.
		p.expiry = time.AfterFunc(time.Until(sub.expires), func() {
			p.expired.Store(true)
			p.wake()
		})
	}
	// The reader's goroutine is the only one an idle connection has; it
	// tells the pusher itself when the client has gone, which costs less
	// than a hook on the context.
	go func() {
		read()
		cancel()
		p.wake()
	}()
	p.wake()
}

// wake makes sure a goroutine looks at the subscriber. It never blocks.
func (p *pusher) wake() {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.done:
	case p.running:
		p.again = true
	default:
		p.running = true
		p.s.runq.push(p)
	}
}

// poll is a run queue worker's turn: it writes what the subscriber has
// to get with writes that never wait, and parks it once caught up. The
// rest (a write the socket did not take whole, a ping, an end, an error,
// the catch-up of a new subscriber, which may read the store) it hands
// to a goroutine of the pusher's own.
func (p *pusher) poll() {
	for {
		if !p.sub.live || p.ctx.Err() != nil || p.expired.Load() || p.pingDue.Load() || hubDone(p.sub.st.hub) {
			go p.run()
			return
		}
		batch, _, err := p.sub.collect(p.ctx)
		if err != nil {
			p.collected = err
			go p.run()
			return
		}
		if len(batch) > 0 {
			p.extendDeadline()
			rest, err := p.sink.trySend(batch)
			if err != nil {
				p.dropped(err)
				go p.finish()
				return
			}
			if rest != nil {
				p.rest, p.restBatch = rest, batch
				go p.run()
				return
			}
			p.sent(batch)
			if len(batch) == p.sub.max || p.s.cfg.BatchWindow <= 0 || p.sub.finished {
				continue
			}
		}
		if p.parked() {
			return
		}
	}
}

// parked parks the subscriber on its stream and lets the running
// goroutine go; false when there is more to do first (the stream moved
// on before it parked, or a wake came meanwhile).
func (p *pusher) parked() bool {
	if !p.sub.park(p) {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.again {
		p.again = false
		return false
	}
	p.running = false
	return true
}

// sent records a batch that went out.
func (p *pusher) sent(batch []*entry) {
	p.s.metrics.wrote(p.transport, batch, time.Now())
	p.heartbeat.Reset(p.s.cfg.Heartbeat)
}

// run sends what there is to send, then parks or ends.
func (p *pusher) run() {
	if p.rest != nil {
		err := p.rest()
		p.rest = nil
		if err != nil {
			p.dropped(err)
			p.finish()
			return
		}
		p.sent(p.restBatch)
		p.restBatch = nil
	}
	for {
		end, notify := p.step()
		if end {
			p.finish()
			return
		}
		if p.linger(notify) {
			continue
		}
		if p.parked() {
			return
		}
	}
}

// tokenExpiredMessage tells a subscriber whose token expired what to do.
const tokenExpiredMessage = "your token has expired; reconnect with a new one and your last cursor, nothing is lost"

// windowPerPusher scales a stream's batch window to its streaming
// subscribers: an announcement costs about one write per subscriber, and
// a window of this much per subscriber keeps those writes to about one
// every windowPerPusher on a busy stream. A room of a few subscribers
// thus sends every event at once; one of a thousand gets the full window.
const windowPerPusher = 20 * time.Microsecond

// lingerFor is how long a pusher that has caught up waits for more before
// it parks and lets its goroutine go. On a busy stream it thus keeps its
// goroutine (and that goroutine's grown stack) from one event to the next;
// on a quiet one it holds nothing for long.
const lingerFor = 200 * time.Millisecond

// linger waits up to lingerFor for news on the stream (notify); false when
// nothing came.
func (p *pusher) linger(notify <-chan struct{}) bool {
	if p.lingerTimer == nil {
		p.lingerTimer = time.NewTimer(lingerFor)
	} else {
		p.lingerTimer.Reset(lingerFor)
	}
	// Only the stream's channel and the pusher's own timer: every subscriber
	// of the stream waits on notify, and each shared channel more in this
	// select is a lock they all contend for. The end of the connection and
	// the shutdown are seen when the linger is over.
	select {
	case <-notify:
	case <-p.lingerTimer.C:
		return false
	}
	p.lingerTimer.Stop()
	return true
}

// step writes everything available, a ping if one is due, or the end the
// situation calls for. It returns true when the connection is to end, and
// otherwise the channel the stream's next publish closes.
func (p *pusher) step() (end bool, notify <-chan struct{}) {
	s := p.s
	for {
		if p.ctx.Err() != nil {
			return true, nil
		}
		if p.expired.Load() {
			p.extendDeadline()
			p.sink.end(protocol.CloseTokenExpired, tokenExpiredMessage)
			return true, nil
		}
		var batch []*entry
		var news <-chan struct{}
		var err error
		if p.collected != nil {
			err, p.collected = p.collected, nil
		} else {
			batch, news, err = p.sub.collect(p.ctx)
		}
		p.extendDeadline()
		switch {
		case err == nil && len(batch) > 0:
			if err := p.sink.send(batch); err != nil {
				p.dropped(err)
				return true, nil
			}
			p.sent(batch)
			if len(batch) < p.sub.max && s.cfg.BatchWindow > 0 && !p.sub.finished {
				// Caught up as of the collect: wait for the stream's next
				// announcement, which brings a window's worth at once.
				return false, news
			}
			continue
		case err == nil && hubDone(p.sub.st.hub):
			p.sink.end(protocol.CloseShutdown, "the server is restarting; reconnect with your last cursor")
			return true, nil
		case err == nil && p.pingDue.Swap(false):
			pctx, cancel := context.WithTimeout(p.ctx, s.cfg.WriteTimeout)
			err := p.sink.ping(pctx)
			cancel()
			if err != nil {
				p.dropped(err)
				return true, nil
			}
			p.heartbeat.Reset(s.cfg.Heartbeat)
			continue
		case err == nil:
			return false, news // caught up
		case errors.Is(err, errTaskFinished):
			p.sink.end(protocol.CloseTaskFinished, taskFinishedMessage)
			return true, nil
		case errors.Is(err, ErrSlowConsumer):
			s.metrics.slowDrops.Inc()
			p.sink.end(protocol.CloseSlowConsumer, "you fell too far behind; reconnect with your last cursor, nothing is lost")
			return true, nil
		case errors.Is(err, ErrUnavailable):
			s.log.Warn("subscription: store unavailable", "transport", p.transport, "stream", p.stream, "err", err)
			p.sink.end(protocol.CloseUnavailable, "the server cannot reach its event store right now; reconnect with your last cursor in a moment")
			return true, nil
		default:
			if p.ctx.Err() == nil {
				s.log.Error("subscription", "transport", p.transport, "stream", p.stream, "err", err)
				p.sink.end(protocol.CloseInternal, "internal error; reconnect with your last cursor")
			}
			return true, nil
		}
	}
}

// dropped counts the end of a subscriber whose write or ping failed with
// err as a slow consumer's when the write timeout ended it: it did not
// take what was sent (its socket did not drain, it did not answer a ping)
// in time. A connection the client closed is no slow consumer.
func (p *pusher) dropped(err error) {
	if isTimeout(err) {
		p.s.metrics.slowDrops.Inc()
	}
}

// isTimeout reports whether err is a deadline that passed.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// extendDeadline makes sure the next write has the write timeout, less at
// most a tenth of it: setting a deadline costs, and most steps need not
// move it.
func (p *pusher) extendDeadline() {
	now, timeout := time.Now(), p.s.cfg.WriteTimeout
	if p.deadline.Sub(now) > timeout-timeout/10 {
		return
	}
	p.deadline = now.Add(p.s.cfg.WriteTimeout)
	_ = p.conn.SetWriteDeadline(p.deadline)
}

// finish closes the connection and releases what the subscriber held.
func (p *pusher) finish() {
	p.mu.Lock()
	p.done = true
	p.mu.Unlock()
	p.sub.unpark(p)
	p.sub.st.pushers.Add(-1)
	p.heartbeat.Stop()
	if p.expiry != nil {
		p.expiry.Stop()
	}
	if p.lingerTimer != nil {
		p.lingerTimer.Stop()
	}
	p.sink.closeNow()
	p.cleanup()
}

// hubDone reports whether the hub is shutting down.
func hubDone(h *Hub) bool {
	select {
	case <-h.done:
		return true
	default:
		return false
	}
}
