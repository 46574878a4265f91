package server

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/pushd/push/protocol"
)

// serveLongPoll answers with the events after ?since= as soon as there is
// at least one, or with none when ?wait= runs out. wait=0 is a short poll.
// An answer that ends one task's stream (its final event, or nothing when
// the task ended long ago) says "final":true.
func (s *Server) serveLongPoll(w http.ResponseWriter, r *http.Request, t eventsTarget) error {
	wait, err := s.pollWait(r, t.query)
	if err != nil {
		return err
	}
	t.quiet = wait == 0
	sub, cleanup, err := s.subscribeRequest(r, t, transportLongPoll, protocol.MaxPollEvents)
	if err != nil {
		return err
	}
	defer cleanup()
	if !sub.expires.IsZero() {
		// Answer by the token's expiry at the latest: the next poll needs
		// a new one.
		wait = max(0, min(wait, time.Until(sub.expires)))
	}
	ctx := r.Context()
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(wait + s.cfg.WriteTimeout))
	timer := time.NewTimer(wait)
	defer timer.Stop()
	batch, err := sub.next(ctx, timer.C)
	switch {
	case err == nil, errors.Is(err, errIdle), errors.Is(err, ErrShutdown), errors.Is(err, errTaskFinished):
	case ctx.Err() != nil:
		return nil // the client has gone
	default:
		return err
	}
	size := 32
	for _, e := range batch {
		size += len(e.json()) + 1
	}
	body := make([]byte, 0, size+64)
	body = append(body, `{"events":[`...)
	for i, e := range batch {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, e.json()...)
	}
	body = append(body, `],"cursor":"`...)
	body = append(body, sub.Cursor().String()...)
	if sub.finished {
		body = append(body, `","final":true}`+"\n"...)
	} else {
		body = append(body, "\"}\n"...)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	// With a length the answer leaves in one write, not as chunks.
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if _, err := w.Write(body); err == nil {
		s.metrics.wrote(transportLongPoll, batch, time.Now())
	}
	return nil
}

// pollWait parses ?wait= (a Go duration or whole seconds), capped at the
// server's limit; absent means the limit. A HEAD request does not wait.
func (s *Server) pollWait(r *http.Request, q url.Values) (time.Duration, error) {
	if r.Method == http.MethodHead {
		return 0, nil // nothing to wait for without a body
	}
	raw := q.Get("wait")
	if raw == "" {
		return s.cfg.LongPollWait, nil
	}
	d, err := time.ParseDuration(raw)
	if err != nil {
		n, nerr := strconv.ParseUint(raw, 10, 32)
		if nerr != nil {
			return 0, protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidParam, "wait=%q: give a duration such as 25s or 500ms, or whole seconds", raw)
		}
		d = time.Duration(n) * time.Second
	}
	if d < 0 {
		return 0, protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidParam, "wait=%q: must not be negative", raw)
	}
	return min(d, s.cfg.LongPollWait), nil
}
