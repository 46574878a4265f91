package server

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/pushd/push/protocol"
)

// eventsTarget is what a subscribe request asks for.
type eventsTarget struct {
	query  url.Values // the request's query, parsed once
	stream string
	filter string // one task's id, on /v1/tasks/{id}/events
	// tasks is set on the tasks stream: the events of tasks viewer may
	// not see are left out (a nil viewer sees every task), and the
	// subscription counts as watching the tasks it may see.
	tasks  bool
	viewer *identity
	room   string // set for rooms: presence applies
	user   string // join the room's presence while connected
	// hub is where the stream is: nil for the server's hub, else its
	// hub of streams kept in memory only (the stats stream).
	hub *Hub
	// quiet is set on a poll that does not wait (wait=0, HEAD): it logs
	// no one in by itself (see presence.join).
	quiet bool
	// owner is who the subscription counts against (Limits.ConnsPerUser):
	// the token's user, or on a server without tokens the claimed user;
	// "" for none.
	owner string
}

// serveEvents picks the transport from the request: a WebSocket upgrade,
// SSE for Accept: text/event-stream, long polling for anything else. A
// WebSocket handshake that lost its Upgrade on the way (a proxy that does
// not pass it) is refused with 400, not taken for a long poll.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request, t eventsTarget) error {
	switch {
	case r.Method == http.MethodHead:
		return s.serveLongPoll(w, r, t) // answered at once: see pollWait
	case isWebSocket(r):
		return s.serveWS(w, r, t)
	case r.Header.Get("Sec-WebSocket-Key") != "":
		return s.upgradeLost(r)
	case acceptsEventStream(r):
		return s.serveSSE(w, r, t)
	default:
		return s.serveLongPoll(w, r, t)
	}
}

// upgradeLost refuses a WebSocket handshake without its Upgrade or
// Connection header: a proxy between the client and pushd dropped them, as
// nginx does unless told to pass them. Answered as a long poll, the
// client would see a 200 that is not a WebSocket and try again forever.
// The first of these a minute is logged, for the operator.
func (s *Server) upgradeLost(r *http.Request) error {
	s.upgradeLostLog.Do(func() {
		s.log.Warn("a WebSocket handshake arrived without its Upgrade header: a proxy in front of pushd does not pass WebSocket upgrades (nginx: proxy_http_version 1.1 and proxy_set_header Upgrade and Connection; see Deploying in pushd's README)",
			"client", s.clientIP(r), "proto", r.Proto, "path", r.URL.Path)
	})
	return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidParam,
		"this WebSocket handshake (%s) reached pushd without its Upgrade and Connection headers: a proxy on the way dropped them. "+
			"nginx needs proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade; "+
			"(see Deploying in pushd's README); meanwhile use SSE or long polling", r.Proto)
}

func isWebSocket(r *http.Request) bool {
	return headerHasToken(r.Header, "Connection", "upgrade") && headerHasToken(r.Header, "Upgrade", "websocket")
}

func acceptsEventStream(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		if strings.Contains(strings.ToLower(v), "text/event-stream") {
			return true
		}
	}
	return false
}

func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// since returns the requested start cursor: SSE's Last-Event-ID header if
// sseHeader and present (a reconnecting EventSource sends it with the
// original URL), else ?since=; nil for neither.
func since(r *http.Request, q url.Values, sseHeader bool) (*protocol.Cursor, error) {
	raw, what := q.Get("since"), "since"
	if sseHeader {
		if id := r.Header.Get("Last-Event-ID"); id != "" {
			raw, what = id, "Last-Event-ID"
		}
	}
	if raw == "" {
		if q.Has("since") {
			return nil, protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidCursor, "since is empty: give a cursor (<epoch>:<seq> or <seq>), or leave it out to start at the live end")
		}
		return nil, nil
	}
	c, err := protocol.ParseCursor(raw)
	if err != nil {
		return nil, protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidCursor, "%s: %v", what, err)
	}
	return &c, nil
}

// subscribeRequest does what every transport does before it starts to
// send: it reads the cursor the request asks for (see since; SSE's
// Last-Event-ID counts), counts the subscription in (setUp), opens it with
// batches of up to max events (open), checks the task of a one-task
// stream (settleTask), notes when the request's token expires, for the
// transport to end the subscription then, and, once nothing can refuse
// the request any more, puts the user into the room's presence (join). A
// long poll's subscription has no lag limit: each poll reads from the log
// and holds nothing between polls. The returned cleanup undoes it all, in
// reverse; on error it has been undone already.
func (s *Server) subscribeRequest(r *http.Request, t eventsTarget, transport string, max int) (*subscription, func(), error) {
	c, err := since(r, t.query, transport == transportSSE)
	if err != nil {
		return nil, nil, err
	}
	cleanup, err := s.setUp(r, t, transport)
	if err != nil {
		return nil, nil, err
	}
	sub, cleanup, err := s.open(r.Context(), t, c, max, cleanup)
	if err != nil {
		return nil, nil, err
	}
	sub.unbounded = transport == transportLongPoll
	cleanup = s.track(r, t, sub, transport, cleanup)
	if t.filter != "" {
		if err := s.settleTask(r.Context(), sub, c == nil); err != nil {
			cleanup()
			return nil, nil, err
		}
	}
	if t.tasks {
		sub.viewer = t.viewer
		cleanup = s.watchTasks(r, t, transport, cleanup)
	}
	if id, err := s.authenticate(r); err == nil && id != nil {
		sub.expires = id.expires
	}
	if cleanup, err = s.join(r.Context(), t, cleanup); err != nil {
		return nil, nil, err
	}
	return sub, cleanup, nil
}

// setUp does what every subscription needs before its transport starts:
// the shutdown count, the per-client limits and the connection gauge. On
// success the returned cleanup undoes it all; on error it has been undone
// already. Presence is joined separately (join), once nothing can refuse
// the request any more.
func (s *Server) setUp(r *http.Request, t eventsTarget, transport string) (cleanup func(), err error) {
	if !s.begin() {
		return nil, errShuttingDown
	}
	release, err := s.admit(r, t.owner, transport == transportLongPoll)
	if err != nil {
		s.end()
		return nil, err
	}
	gauge := s.metrics.connGauges[transport]
	gauge.Inc()
	return func() {
		gauge.Dec()
		release()
		s.end()
	}, nil
}

// open opens a subscription at the cursor the request asked for (see
// since), after the limits have admitted it (setUp), so a refused request
// creates no stream. The returned cleanup closes the subscription, then
// runs cleanup; on error cleanup has run.
func (s *Server) open(ctx context.Context, t eventsTarget, c *protocol.Cursor, max int, cleanup func()) (*subscription, func(), error) {
	h := t.hub
	if h == nil {
		h = s.hub
	}
	sub, err := h.subscribe(ctx, t.stream, c, t.filter, max)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return sub, func() {
		sub.close()
		cleanup()
	}, nil
}

// join puts the request's user into the room's presence, then chains the
// leave in front of cleanup. On error the user is out again and cleanup
// has run.
func (s *Server) join(ctx context.Context, t eventsTarget, cleanup func()) (func(), error) {
	if t.room == "" || t.user == "" {
		return cleanup, nil
	}
	if err := s.presence.join(ctx, t.room, t.user, t.quiet); err != nil {
		cleanup() // join has undone its count already
		return nil, err
	}
	return func() {
		s.presence.leave(t.room, t.user)
		cleanup()
	}, nil
}
