package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pushd/push/protocol"
)

// sseBatch is how many events one SSE write takes at most.
const sseBatch = 128

// serveSSE streams events as Server-Sent Events. On HTTP/1.1 the server
// takes the connection over: it writes the response head itself, ends the
// body by closing the connection, and lets a pusher write frames (encoded
// once for everyone) with no goroutine of its own while idle. Where the
// connection cannot be taken over (HTTP/2), the handler streams instead.
func (s *Server) serveSSE(w http.ResponseWriter, r *http.Request, t eventsTarget) error {
	sub, cleanup, err := s.subscribeRequest(r, t, transportSSE, sseBatch)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		defer cleanup()
		s.streamSSE(w, r, sub, t)
		return nil
	}
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	h.Set("Connection", "close")
	_ = h.Write(&head)
	head.WriteString("\r\nretry: 2000\n\n")
	_ = conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	if _, err := conn.Write(head.Bytes()); err != nil {
		conn.Close()
		cleanup()
		return nil
	}
	s.startPusher(func() { readUntilClosed(conn) }, sub, &sseSink{conn: conn, raw: newSocketWriter(conn)}, conn, transportSSE, t.stream, cleanup)
	return nil
}

// readUntilClosed reads and drops what the client sends on a taken-over
// connection (nothing, normally); it returns when the connection ends.
func readUntilClosed(conn net.Conn) {
	var b [64]byte
	for {
		if _, err := conn.Read(b[:]); err != nil {
			return
		}
	}
}

// sseSink writes SSE frames straight to the connection.
type sseSink struct {
	conn net.Conn
	raw  *socketWriter // conn's socket, for trySend
}

// ssePool holds the buffers a batch of frames is gathered in, so an idle
// connection holds none.
var ssePool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// send writes a batch of frames in one system call.
func (k *sseSink) send(batch []*entry) error {
	bp, b := sseFrames(batch)
	_, err := k.conn.Write(b)
	putSSEFrames(bp, b)
	return err
}

// trySend is send without waiting for the socket (see sink).
func (k *sseSink) trySend(batch []*entry) (rest func() error, err error) {
	bp, b := sseFrames(batch)
	n, ok, err := k.raw.tryWrite(b)
	if err != nil || (ok && n == len(b)) {
		putSSEFrames(bp, b)
		return nil, err
	}
	return func() error {
		_, err := k.conn.Write(b[n:])
		putSSEFrames(bp, b)
		return err
	}, nil
}

// sseFrames gathers a batch's frames in a buffer of ssePool;
// putSSEFrames gives it back.
func sseFrames(batch []*entry) (*[]byte, []byte) {
	bp := ssePool.Get().(*[]byte)
	b := (*bp)[:0]
	for _, e := range batch {
		b = append(b, e.frame...)
	}
	return bp, b
}

func putSSEFrames(bp *[]byte, b []byte) {
	if cap(b) <= 256<<10 {
		*bp = b[:0]
		ssePool.Put(bp)
	}
}

func (k *sseSink) ping(context.Context) error {
	_, err := io.WriteString(k.conn, ": heartbeat\n\n")
	return err
}

// end sends a close event (without an id, so Last-Event-ID stays) and
// closes the connection.
func (k *sseSink) end(reason, message string) {
	_, _ = k.conn.Write(closeFrame(reason, message))
	_ = k.conn.Close()
}

func (k *sseSink) closeNow() { _ = k.conn.Close() }

// closeFrame is the SSE frame that says why the server ends a stream.
func closeFrame(reason, message string) []byte {
	js, _ := marshal(map[string]string{"reason": reason, "message": message})
	return []byte("event: close\ndata: " + strings.TrimSpace(string(js)) + "\n\n")
}

// errTokenExpired ends a subscription whose token has expired.
var errTokenExpired = errors.New("token expired")

// streamSSE serves SSE on the handler's goroutine, for connections that
// cannot be taken over.
func (s *Server) streamSSE(w http.ResponseWriter, r *http.Request, sub *subscription, t eventsTarget) {
	ctx := r.Context()
	if !sub.expires.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadlineCause(ctx, sub.expires, errTokenExpired)
		defer cancel()
	}
	rc := http.NewResponseController(w)
	w.WriteHeader(http.StatusOK)
	_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	if _, err := io.WriteString(w, "retry: 2000\n\n"); err != nil {
		return
	}
	if err := rc.Flush(); err != nil {
		return
	}
	idle := time.NewTimer(s.cfg.Heartbeat)
	defer idle.Stop()
	for {
		batch, err := sub.next(ctx, idle.C)
		_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		switch {
		case err == nil:
			for _, e := range batch {
				if _, err := w.Write(e.frame); err != nil {
					s.streamDropped(ctx, err)
					return
				}
			}
			s.metrics.wrote(transportSSE, batch, time.Now())
		case errors.Is(err, errIdle):
			if _, err := io.WriteString(w, ": heartbeat\n\n"); err != nil {
				s.streamDropped(ctx, err)
				return
			}
		case errors.Is(err, errTaskFinished):
			_, _ = w.Write(closeFrame(protocol.CloseTaskFinished, taskFinishedMessage))
			_ = rc.Flush()
			return
		case errors.Is(err, ErrSlowConsumer):
			s.metrics.slowDrops.Inc()
			_, _ = w.Write(closeFrame(protocol.CloseSlowConsumer, "you fell too far behind; reconnect with your last event id, nothing is lost"))
			_ = rc.Flush()
			return
		case errors.Is(err, ErrShutdown):
			_, _ = w.Write(closeFrame(protocol.CloseShutdown, "the server is restarting; reconnect with your last event id"))
			_ = rc.Flush()
			return
		case errors.Is(err, ErrUnavailable):
			_, _ = w.Write(closeFrame(protocol.CloseUnavailable, "the server cannot reach its event store right now; reconnect with your last event id in a moment"))
			_ = rc.Flush()
			return
		case errors.Is(context.Cause(ctx), errTokenExpired):
			_, _ = w.Write(closeFrame(protocol.CloseTokenExpired, tokenExpiredMessage))
			_ = rc.Flush()
			return
		default:
			if ctx.Err() == nil {
				s.log.Error("sse subscription", "stream", t.stream, "err", err)
			}
			return
		}
		if err := rc.Flush(); err != nil {
			s.streamDropped(ctx, err)
			return
		}
		idle.Reset(s.cfg.Heartbeat)
	}
}

// streamDropped counts the end of a stream served on its handler's
// goroutine whose write failed with err as a slow consumer's, unless the
// client had gone already (ctx).
func (s *Server) streamDropped(ctx context.Context, err error) {
	if ctx.Err() == nil || isTimeout(err) {
		s.metrics.slowDrops.Inc()
	}
}
