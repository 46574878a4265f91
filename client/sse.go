package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/pushd/push/internal/sse"
)

// runSSE reads one Server-Sent Events stream.
func (s *Subscription) runSSE(ctx context.Context, sess *session) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wd := newWatchdog(s.opts.ConnectTimeout, cancel)
	defer wd.stop()

	req, err := s.c.newRequest(ctx, http.MethodGet, s.path, s.query(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	if s.hasPos {
		// What a reconnecting EventSource sends; the server prefers it
		// to ?since=, which says the same here.
		req.Header.Set("Last-Event-ID", s.pos.String())
	}
	resp, err := s.c.hc.Do(req)
	if err != nil {
		if werr := wd.err("sse request"); werr != nil {
			// Something held the request without answering.
			return &refusedError{transport: TransportSSE, err: werr, transient: true}
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &refusedError{transport: TransportSSE, err: decodeError(resp)}
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return &refusedError{transport: TransportSSE, err: &notPushdError{status: resp.StatusCode,
			msg: fmt.Sprintf("answer is %q, not text/event-stream", resp.Header.Get("Content-Type"))}}
	}
	sess.open(TransportSSE)
	wd.set(s.opts.IdleTimeout)
	r := sse.NewReader(&activityReader{r: resp.Body, kick: wd.kick}, sseReadBuffer, maxSSELine)
	for {
		ev, err := r.Next()
		if d := r.Retry(); d > 0 {
			s.hint = d
		}
		if err != nil {
			if werr := wd.err("sse"); werr != nil {
				return werr
			}
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("sse: the server ended the stream: %w", io.EOF)
			}
			return fmt.Errorf("sse: %w", err)
		}
		if string(ev.Type) == "close" {
			ce := &CloseError{}
			var body struct{ Reason, Message string }
			if json.Unmarshal(ev.Data, &body) == nil {
				ce.Reason, ce.Message = body.Reason, body.Message
			}
			return ce
		}
		if err := sess.deliverJSON(ctx, ev.Data, wd); err != nil {
			return err
		}
	}
}

// activityReader calls kick whenever bytes arrive: heartbeat comments
// count as signs of life too.
type activityReader struct {
	r    io.Reader
	kick func()
}

func (a *activityReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		a.kick()
	}
	return n, err
}

// sseReadBuffer is the read buffer of an event stream; maxSSELine bounds
// one of its lines.
const (
	sseReadBuffer = 4 << 10
	maxSSELine    = 16 << 20
)
