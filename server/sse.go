package server

import (
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/pushd/push/protocol"
)

// sseBatch is how many events one SSE write takes at most.
const sseBatch = 128

// serveSSE streams events as Server-Sent Events. Each batch of queued
// events goes out in one flush; frames were encoded once for everyone.
func (s *Server) serveSSE(w http.ResponseWriter, r *http.Request, t eventsTarget) error {
	ctx := r.Context()
	sub, err := s.open(ctx, r, t, true, sseBatch)
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
	gauge := s.metrics.connGauges[transportSSE]
	gauge.Inc()
	defer gauge.Dec()
	leave, err := s.join(ctx, t)
	defer leave()
	if err != nil {
		return err
	}

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	if _, err := io.WriteString(w, "retry: 2000\n\n"); err != nil {
		return nil
	}
	if err := rc.Flush(); err != nil {
		return nil
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
					return nil
				}
			}
			s.metrics.wrote(transportSSE, batch, time.Now())
		case errors.Is(err, errIdle):
			if _, err := io.WriteString(w, ": heartbeat\n\n"); err != nil {
				return nil
			}
		case errors.Is(err, ErrSlowConsumer):
			s.metrics.slowDrops.Inc()
			_, _ = io.WriteString(w, "event: close\ndata: {\"reason\":\""+protocol.CloseSlowConsumer+"\",\"message\":\"you fell too far behind; reconnect with your last event id, nothing is lost\"}\n\n")
			_ = rc.Flush()
			return nil
		case errors.Is(err, ErrShutdown):
			_, _ = io.WriteString(w, "event: close\ndata: {\"reason\":\""+protocol.CloseShutdown+"\",\"message\":\"the server is restarting; reconnect with your last event id\"}\n\n")
			_ = rc.Flush()
			return nil
		default:
			if ctx.Err() == nil {
				s.log.Error("sse subscription", "stream", t.stream, "err", err)
			}
			return nil
		}
		if err := rc.Flush(); err != nil {
			return nil
		}
		idle.Reset(s.cfg.Heartbeat)
	}
}
