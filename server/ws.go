package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/pushd/push/protocol"
)

// wsBatch is how many events one WebSocket write takes at most.
const wsBatch = 128

// serveWS streams events over a WebSocket: one text message per event, or
// with the batch subprotocol several per message. The client sends nothing;
// a reader goroutine answers pings and notices the close.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request, t eventsTarget) error {
	sub, err := s.open(r.Context(), r, t, false, wsBatch)
	if err != nil {
		return err
	}
	if !s.begin() {
		return errShuttingDown
	}
	defer s.end()
	release, err := s.admit(w, r, t.user, false)
	if err != nil {
		return err
	}
	defer release()
	gauge := s.metrics.connGauges[transportWS]
	gauge.Inc()
	defer gauge.Dec()
	leave, err := s.join(r.Context(), t)
	defer leave()
	if err != nil {
		return err
	}

	hw := &hijackRecorder{ResponseWriter: w}
	c, err := websocket.Accept(hw, r, &websocket.AcceptOptions{
		Subprotocols: []string{protocol.BatchSubprotocol},
		// Origins were checked already, with the server's own rules.
		InsecureSkipVerify: true,
	})
	if err != nil {
		return nil // Accept has answered the request
	}
	c.SetReadLimit(s.cfg.Limits.WSReadLimit)
	// Writes get deadlines on the raw connection, so they need no context
	// (and allocate nothing); the reader goroutine owns ctx.
	ctx := readAndDiscard(c)
	batching := c.Subprotocol() == protocol.BatchSubprotocol
	var buf []byte
	idle := time.NewTimer(s.cfg.Heartbeat)
	defer idle.Stop()
	for {
		batch, err := sub.next(ctx, idle.C)
		hw.conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		switch {
		case err == nil:
			if batching {
				buf = buf[:0]
				for i, e := range batch {
					if i > 0 {
						buf = append(buf, '\n')
					}
					buf = append(buf, e.json()...)
				}
				err = c.Write(context.Background(), websocket.MessageText, buf)
			} else {
				// One message per event, but all of them in one system call.
				hw.out.cork()
				for _, e := range batch {
					if err = c.Write(context.Background(), websocket.MessageText, e.json()); err != nil {
						break
					}
				}
				if uerr := hw.out.uncork(); err == nil {
					err = uerr
				}
			}
			if err == nil {
				s.metrics.wrote(transportWS, batch, time.Now())
			}
		case errors.Is(err, errIdle):
			pctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
			err = c.Ping(pctx)
			cancel()
		case errors.Is(err, ErrSlowConsumer):
			s.metrics.slowDrops.Inc()
			_ = c.Close(protocol.CloseCodeSlowConsumer, protocol.CloseSlowConsumer+": reconnect with your last cursor, nothing is lost")
			return nil
		case errors.Is(err, ErrShutdown):
			_ = c.Close(protocol.CloseCodeServiceRestart, protocol.CloseShutdown)
			return nil
		default:
			if ctx.Err() == nil {
				s.log.Error("websocket subscription", "stream", t.stream, "err", err)
				_ = c.Close(websocket.StatusInternalError, "internal error; reconnect with your last cursor")
				return nil
			}
		}
		if err != nil {
			_ = c.CloseNow()
			return nil
		}
		idle.Reset(s.cfg.Heartbeat)
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
