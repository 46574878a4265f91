package server

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
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
	if err := checkHandshake(w, r); err != nil {
		return err
	}
	// The handshake was checked, so Accept can only fail for want of a
	// connection to take over: join presence now, and the client's login is
	// in the stream before its upgrade is answered.
	sub, cleanup, err := s.subscribeRequest(r, t, transportWS, wsBatch)
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
	sk := &wsSink{c: c, out: hw.out, raw: newSocketWriter(hw.conn), batching: c.Subprotocol() == protocol.BatchSubprotocol}
	s.startPusher(func() { readAndDiscard(c) }, sub, sk, hw.conn, transportWS, t.stream, cleanup)
	return nil
}

// checkHandshake refuses a WebSocket upgrade the library would refuse, but
// with the error body of every other refusal (RFC 6455, section 4.2.1), and
// before anything has changed.
func checkHandshake(w http.ResponseWriter, r *http.Request) error {
	if r.ProtoMajor != 1 || !r.ProtoAtLeast(1, 1) {
		return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidParam, "a WebSocket upgrade needs HTTP/1.1, not %s", r.Proto)
	}
	if _, ok := w.(http.Hijacker); !ok {
		return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidParam, "this connection cannot be upgraded to a WebSocket; use SSE or long polling")
	}
	if keys := r.Header.Values("Sec-WebSocket-Key"); len(keys) != 1 {
		return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidParam, "send exactly one Sec-WebSocket-Key")
	}
	if v := r.Header.Get("Sec-WebSocket-Version"); v != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidParam, "WebSocket version %q is not supported; use 13", v)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(r.Header.Get("Sec-WebSocket-Key")))
	if err != nil || len(key) != 16 {
		return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidParam, "Sec-WebSocket-Key must be 16 bytes in base64")
	}
	return nil
}

// wsSink sends events as WebSocket messages. The pusher sets deadlines on
// the raw connection.
type wsSink struct {
	c        *websocket.Conn
	out      *connWriter   // what c writes to; send writes to it too
	raw      *socketWriter // out's socket, for trySend; under out.mu
	batching bool
}

// send writes a batch in one system call: one message per event, or with
// the batch subprotocol as few messages as the size bound allows. The
// frames are built here, straight around the shared encoded events (a
// server's frames are not masked), and go out through the same writer as
// the library's control frames, whole frames at a time, so they never
// interleave with a pong.
func (k *wsSink) send(batch []*entry) error {
	bp, b := k.frames(batch)
	_, err := k.out.Write(b)
	putFrames(bp, b)
	return err
}

// trySend is send without waiting for the socket (see sink). While a
// write is unfinished the writer stays locked, and rest unlocks it.
func (k *wsSink) trySend(batch []*entry) (rest func() error, err error) {
	bp, b := k.frames(batch)
	k.out.mu.Lock()
	n, ok, err := k.raw.tryWrite(b)
	if err != nil || (ok && n == len(b)) {
		k.out.mu.Unlock()
		putFrames(bp, b)
		return nil, err
	}
	return func() error {
		_, err := k.out.conn.Write(b[n:])
		k.out.mu.Unlock()
		putFrames(bp, b)
		return err
	}, nil
}

// frames builds a batch's frames in a buffer of framePool; putFrames
// gives it back.
func (k *wsSink) frames(batch []*entry) (*[]byte, []byte) {
	bp := framePool.Get().(*[]byte)
	b := (*bp)[:0]
	if k.batching {
		// Events joined by "\n", in messages of at most wsBatchBytes (an
		// event larger than that goes alone).
		for i := 0; i < len(batch); {
			n, j := len(batch[i].json()), i+1
			for ; j < len(batch) && n+1+len(batch[j].json()) <= wsBatchBytes; j++ {
				n += 1 + len(batch[j].json())
			}
			b = appendFrameHeader(b, n)
			for x := i; x < j; x++ {
				if x > i {
					b = append(b, '\n')
				}
				b = append(b, batch[x].json()...)
			}
			i = j
		}
	} else {
		for _, e := range batch {
			b = appendFrameHeader(b, len(e.json()))
			b = append(b, e.json()...)
		}
	}
	return bp, b
}

// putFrames gives a buffer of frames back to framePool, unless it grew
// too large to keep.
func putFrames(bp *[]byte, b []byte) {
	if cap(b) <= 256<<10 {
		*bp = b[:0]
		framePool.Put(bp)
	}
}

// appendFrameHeader appends the header of an unmasked, final text frame of
// n bytes (RFC 6455, section 5.2).
func appendFrameHeader(b []byte, n int) []byte {
	const finText = 0x81
	switch {
	case n < 126:
		return append(b, finText, byte(n))
	case n < 1<<16:
		return append(b, finText, 126, byte(n>>8), byte(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, finText, 127), uint64(n))
	}
}

func (k *wsSink) ping(ctx context.Context) error { return k.c.Ping(ctx) }

// end sends a close frame whose code and reason say why (see PROTOCOL.md).
func (k *wsSink) end(reason, _ string) {
	code := websocket.StatusInternalError
	switch reason {
	case protocol.CloseShutdown:
		code = protocol.CloseCodeServiceRestart
	case protocol.CloseUnavailable:
		code = protocol.CloseCodeTryAgainLater
	case protocol.CloseSlowConsumer:
		code = protocol.CloseCodeSlowConsumer
	case protocol.CloseTaskFinished:
		code = protocol.CloseCodeNormal
	case protocol.CloseTokenExpired:
		code = protocol.CloseCodeTokenExpired
	}
	_ = k.c.Close(code, reason)
}

func (k *wsSink) closeNow() { _ = k.c.CloseNow() }

// readAndDiscard is the connection's reader: it answers pings, takes the
// client's close, and drops any message the client sends (the protocol
// ignores them). It returns when the connection ends. It reads without a
// context: closing the connection ends the read, and a cancellable context
// would cost a hook per read.
func readAndDiscard(c *websocket.Conn) {
	for {
		_, r, err := c.Reader(context.Background())
		if err != nil {
			return
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return
		}
	}
}

// hijackRecorder keeps the connection that websocket.Accept hijacks, so the
// server can set write deadlines on it and write frames to it directly, and
// gives the library small buffers: the client sends next to nothing, and
// the server's batches do not go through them.
type hijackRecorder struct {
	http.ResponseWriter
	conn net.Conn
	out  *connWriter
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
	h.out = &connWriter{conn: c}
	r := brw.Reader
	if r.Buffered() == 0 {
		r = bufio.NewReaderSize(c, wsReadBuffer)
	}
	return c, bufio.NewReadWriter(r, bufio.NewWriterSize(h.out, wsWriteBuffer)), nil
}

// Buffer sizes of a WebSocket connection: reads are control frames, and
// the library writes only control frames.
const (
	wsReadBuffer  = 128
	wsWriteBuffer = 128
)

// connWriter is what the WebSocket library writes its frames to, and the
// sink writes its batches to: one write at a time, so that frames never
// interleave.
type connWriter struct {
	mu   sync.Mutex
	conn net.Conn
}

// framePool holds the buffers a batch of frames is built in, so an idle
// connection holds none.
var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

func (w *connWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.conn.Write(p)
}
