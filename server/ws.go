package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"

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
// a reader goroutine answers pings and notices the close. The handler
// returns once the connection is set up; a pusher does the rest.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request, t eventsTarget) error {
	sub, err := s.open(r.Context(), r, t, false, wsBatch)
	if err != nil {
		return err
	}
	cleanup, err := s.setUp(w, r, t, transportWS)
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
		cleanup()
		return nil // Accept has answered the request
	}
	c.SetReadLimit(s.cfg.Limits.WSReadLimit)
	// Keep the connection, not the finished request and response.
	sk := &wsSink{c: c, out: hw.out, batching: c.Subprotocol() == protocol.BatchSubprotocol}
	s.startPusher(readAndDiscard(c), sub, sk, hw.conn, transportWS, t.stream, cleanup)
	return nil
}

// wsSink sends events as WebSocket messages. Writes need no context (and
// allocate nothing): the pusher sets deadlines on the raw connection.
type wsSink struct {
	c        *websocket.Conn
	out      *corkWriter // what c writes to
	batching bool
	buf      []byte // batch message, reused
}

// send writes a batch in one system call: one message per event, or with
// the batch subprotocol as few messages as the size bound allows.
func (k *wsSink) send(batch []*entry) error {
	k.out.cork()
	var err error
	if k.batching {
		// Events joined by "\n", in messages of at most wsBatchBytes
		// (an event larger than that goes alone).
		k.buf = k.buf[:0]
		for _, e := range batch {
			js := e.json()
			if len(k.buf) > 0 && len(k.buf)+1+len(js) > wsBatchBytes {
				if err = k.c.Write(context.Background(), websocket.MessageText, k.buf); err != nil {
					break
				}
				k.buf = k.buf[:0]
			}
			if len(k.buf) > 0 {
				k.buf = append(k.buf, '\n')
			}
			k.buf = append(k.buf, js...)
		}
		if err == nil {
			err = k.c.Write(context.Background(), websocket.MessageText, k.buf)
		}
		if cap(k.buf) > wsBatchBytes {
			k.buf = nil // an idle connection keeps no large buffer
		}
	} else {
		for _, e := range batch {
			if err = k.c.Write(context.Background(), websocket.MessageText, e.json()); err != nil {
				break
			}
		}
	}
	if uerr := k.out.uncork(); err == nil {
		err = uerr
	}
	return err
}

func (k *wsSink) ping(ctx context.Context) error { return k.c.Ping(ctx) }

// end sends a close frame whose code and reason say why (see PROTOCOL.md).
func (k *wsSink) end(reason, _ string) {
	code := websocket.StatusInternalError
	switch reason {
	case protocol.CloseShutdown:
		code = protocol.CloseCodeServiceRestart
	case protocol.CloseSlowConsumer:
		code = protocol.CloseCodeSlowConsumer
	}
	_ = k.c.Close(code, reason)
}

func (k *wsSink) closeNow() { _ = k.c.CloseNow() }

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
