package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/pushd/push/protocol"
)

// wsBatch is how many events one WebSocket write takes at most, and
// wsBatchBytes how large one message of the batch subprotocol grows.
const (
	wsBatch      = 128
	wsBatchBytes = 64 << 10
)

// serveWS streams events over a WebSocket: one text message per event, or
// with the batch subprotocol several per message. The client sends nothing;
// a reader goroutine answers pings and notices the close.
//
// A WebSocket subscriber has no writer goroutine while it waits: the
// handler returns once the connection is set up, and a wsWriter runs on a
// goroutine of its own only while there is something to send (events, a
// ping, a close), so an idle connection costs its reader and some memory.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request, t eventsTarget) error {
	sub, err := s.open(r.Context(), r, t, false, wsBatch)
	if err != nil {
		return err
	}
	if !s.begin() {
		return errShuttingDown
	}
	var cleanups []func()
	cleanup := func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}
	cleanups = append(cleanups, s.end)
	release, err := s.admit(w, r, t.user, false)
	if err != nil {
		cleanup()
		return err
	}
	gauge := s.metrics.connGauges[transportWS]
	gauge.Inc()
	cleanups = append(cleanups, release, gauge.Dec)
	leave, err := s.join(r.Context(), t)
	cleanups = append(cleanups, leave)
	if err != nil {
		cleanup()
		return err
	}

	hw := &hijackRecorder{ResponseWriter: w}
	c, err := websocket.Accept(hw, r, &websocket.AcceptOptions{
		Subprotocols: []string{protocol.BatchSubprotocol},
		// Origins were checked already, with the server's own rules.
		InsecureSkipVerify: true,
	})
	if err != nil {
		cleanup()
		return nil // Accept has answered the request
	}
	c.SetReadLimit(s.cfg.Limits.WSReadLimit)
	// Keep the connection, not the finished request and response.
	ww := &wsWriter{s: s, sub: sub, c: c, conn: hw.conn, out: hw.out, stream: t.stream, cleanup: cleanup,
		batching: c.Subprotocol() == protocol.BatchSubprotocol}
	ww.ctx = readAndDiscard(c)
	context.AfterFunc(ww.ctx, ww.wake) // the client went away: end
	ww.heartbeat = time.AfterFunc(s.cfg.Heartbeat, func() {
		ww.pingDue.Store(true)
		ww.wake()
	})
	ww.wake()
	return nil
}

// wsWriter sends a WebSocket subscriber its events. At most one goroutine
// runs it at a time (running); it parks itself on the stream when it has
// caught up and is woken by the next publish, its heartbeat timer, the
// shutdown or the end of the connection.
type wsWriter struct {
	s        *Server
	sub      *subscription
	c        *websocket.Conn
	conn     net.Conn        // the raw connection, for write deadlines
	out      *corkWriter     // what c writes to
	ctx      context.Context // ends with the connection
	stream   string
	batching bool
	buf      []byte // batch message, reused
	cleanup  func()

	heartbeat *time.Timer
	pingDue   atomic.Bool

	mu      sync.Mutex
	running bool // a goroutine is in run
	again   bool // woken while running: look once more before parking
	done    bool
}

// wake makes sure a goroutine looks at the subscriber. It never blocks.
func (w *wsWriter) wake() {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.done:
	case w.running:
		w.again = true
	default:
		w.running = true
		go w.run()
	}
}

// run sends what there is to send, then parks or ends.
func (w *wsWriter) run() {
	for {
		if end := w.step(); end {
			w.finish()
			return
		}
		if !w.sub.park(w) {
			continue
		}
		w.mu.Lock()
		if w.again {
			w.again = false
			w.mu.Unlock()
			continue
		}
		w.running = false
		w.mu.Unlock()
		return
	}
}

// step writes everything available, a ping if one is due, or the close the
// situation calls for. It returns true when the connection is to end.
func (w *wsWriter) step() (end bool) {
	s, c := w.s, w.c
	for {
		if w.ctx.Err() != nil {
			return true
		}
		batch, _, err := w.sub.collect(w.ctx)
		w.conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		switch {
		case err == nil && len(batch) > 0:
			if err := w.write(batch); err != nil {
				return true
			}
			s.metrics.wrote(transportWS, batch, time.Now())
			w.heartbeat.Reset(s.cfg.Heartbeat)
			continue
		case err == nil && hubDone(s.hub):
			_ = c.Close(protocol.CloseCodeServiceRestart, protocol.CloseShutdown)
			return true
		case err == nil && w.pingDue.Swap(false):
			pctx, cancel := context.WithTimeout(w.ctx, s.cfg.WriteTimeout)
			err := c.Ping(pctx)
			cancel()
			if err != nil {
				return true
			}
			w.heartbeat.Reset(s.cfg.Heartbeat)
			continue
		case err == nil:
			return false // caught up: park
		case errors.Is(err, ErrSlowConsumer):
			s.metrics.slowDrops.Inc()
			_ = c.Close(protocol.CloseCodeSlowConsumer, protocol.CloseSlowConsumer+": reconnect with your last cursor, nothing is lost")
			return true
		default:
			if w.ctx.Err() == nil {
				s.log.Error("websocket subscription", "stream", w.stream, "err", err)
				_ = c.Close(websocket.StatusInternalError, "internal error; reconnect with your last cursor")
			}
			return true
		}
	}
}

// write sends a batch in one system call: one message per event, or with
// the batch subprotocol as few messages as the size bound allows.
func (w *wsWriter) write(batch []*entry) error {
	w.out.cork()
	var err error
	if w.batching {
		// Events joined by "\n", in messages of at most wsBatchBytes
		// (an event larger than that goes alone).
		w.buf = w.buf[:0]
		for _, e := range batch {
			js := e.json()
			if len(w.buf) > 0 && len(w.buf)+1+len(js) > wsBatchBytes {
				if err = w.c.Write(context.Background(), websocket.MessageText, w.buf); err != nil {
					break
				}
				w.buf = w.buf[:0]
			}
			if len(w.buf) > 0 {
				w.buf = append(w.buf, '\n')
			}
			w.buf = append(w.buf, js...)
		}
		if err == nil {
			err = w.c.Write(context.Background(), websocket.MessageText, w.buf)
		}
		if cap(w.buf) > wsBatchBytes {
			w.buf = nil // an idle connection keeps no large buffer
		}
	} else {
		for _, e := range batch {
			if err = w.c.Write(context.Background(), websocket.MessageText, e.json()); err != nil {
				break
			}
		}
	}
	if uerr := w.out.uncork(); err == nil {
		err = uerr
	}
	return err
}

// finish closes the connection and releases what the subscriber held.
func (w *wsWriter) finish() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
	w.sub.unpark(w)
	w.heartbeat.Stop()
	_ = w.c.CloseNow()
	w.cleanup()
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

// readAndDiscard starts the connection's reader: it answers pings, takes
// the client's close, and drops any message the client sends (the protocol
// ignores them). The returned context ends when the connection does.
func readAndDiscard(c *websocket.Conn) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer cancel()
		for {
			_, r, err := c.Reader(ctx)
			if err != nil {
				return
			}
			if _, err := io.Copy(io.Discard, r); err != nil {
				return
			}
		}
	}()
	return ctx
}

// hijackRecorder keeps the connection that websocket.Accept hijacks, so the
// server can set write deadlines on it directly, and gives the WebSocket
// small buffers and a corkable writer: the client sends next to nothing, and
// several messages can leave in one system call.
type hijackRecorder struct {
	http.ResponseWriter
	conn net.Conn
	out  *corkWriter
}

func (h *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("connection cannot be hijacked")
	}
	c, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.conn = c
	h.out = &corkWriter{conn: c}
	r := brw.Reader
	if r.Buffered() == 0 {
		r = bufio.NewReaderSize(c, wsReadBuffer)
	}
	return c, bufio.NewReadWriter(r, bufio.NewWriterSize(h.out, wsWriteBuffer)), nil
}

// Buffer sizes of a WebSocket connection. Reads are control frames; writes
// pass through to corkWriter, which gathers a batch.
const (
	wsReadBuffer  = 512
	wsWriteBuffer = 512
)

// corkWriter passes writes through to conn, except between cork and uncork,
// when it gathers them to send in one write. The buffer is pooled, so an
// idle connection holds none.
type corkWriter struct {
	mu     sync.Mutex
	conn   net.Conn
	corked bool
	buf    *[]byte
}

var corkPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

func (w *corkWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.corked {
		return w.conn.Write(p)
	}
	*w.buf = append(*w.buf, p...)
	return len(p), nil
}

func (w *corkWriter) cork() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.corked = true
	w.buf = corkPool.Get().(*[]byte)
}

// uncork sends what was gathered. The lock is held across the write so a
// pong written meanwhile by the reader goroutine keeps its place.
func (w *corkWriter) uncork() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.corked = false
	_, err := w.conn.Write(*w.buf)
	if cap(*w.buf) <= 256<<10 {
		*w.buf = (*w.buf)[:0]
		corkPool.Put(w.buf)
	}
	w.buf = nil
	return err
}
