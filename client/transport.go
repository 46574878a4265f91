package client

import (
	"context"
	"errors"
	"fmt"
	"net/url"
)

// Transport is how a subscription receives events.
type Transport string

// The transports. Every stream offers all of them on one URL; the request
// picks one.
const (
	// TransportAuto tries WebSocket, falls back to SSE when the upgrade is
	// refused (a proxy that does not pass it, say), and to long polling
	// when SSE is refused too. It remembers what worked and reconnects
	// with that first.
	TransportAuto Transport = "auto"
	// TransportWebSocket is one WebSocket, one text message per event (or
	// several with SubscribeOptions.Batch).
	TransportWebSocket Transport = "ws"
	// TransportSSE is Server-Sent Events.
	TransportSSE Transport = "sse"
	// TransportLongPoll is HTTP long polling: each request waits up to
	// SubscribeOptions.LongPollWait for events. The first request of each
	// connection asks for no wait, so that StateConnected is reported once
	// the server accepts, not at the stream's next event.
	TransportLongPoll Transport = "longpoll"
	// TransportPoll is short polling: a request that answers at once,
	// every SubscribeOptions.PollInterval.
	TransportPoll Transport = "poll"
)

// ParseTransport parses a transport's name ("auto", "ws", "sse",
// "longpoll", "poll"); "" is auto.
func ParseTransport(s string) (Transport, error) {
	switch t := Transport(s); t {
	case "":
		return TransportAuto, nil
	case TransportAuto, TransportWebSocket, TransportSSE, TransportLongPoll, TransportPoll:
		return t, nil
	}
	return "", fmt.Errorf("unknown transport %q: use auto, ws, sse, longpoll or poll", s)
}

// order returns the transports to try, in order.
func (s *Subscription) order() []Transport {
	if s.opts.Transport != TransportAuto {
		return []Transport{s.opts.Transport}
	}
	all := []Transport{TransportWebSocket, TransportSSE, TransportLongPoll}
	for i, t := range all {
		if t == s.working {
			return all[i:]
		}
	}
	return all
}

// connect makes one connection, falling back from transport to transport
// in auto mode while they are refused, and reads from it until it ends.
func (s *Subscription) connect(ctx context.Context, sess *session) error {
	order := s.order()
	s.emit(StateChange{State: StateConnecting, Transport: order[0]})
	if !s.hasPos {
		// Live end: learn where "now" is first, so that a drop before the
		// first event resumes from here instead of skipping ahead.
		p, cur, err := s.c.head(ctx, s.stream)
		if err != nil {
			return err
		}
		if p.Final {
			// One task's stream, of a task that has ended: its final
			// event, and nothing more to follow.
			for _, ev := range p.Events {
				if err := sess.deliver(ctx, ev, nil); err != nil {
					return err
				}
			}
			s.setPos(cur)
			return errEnded
		}
		s.pos, s.hasPos = cur, true
	}
	var err error
	for i, t := range order {
		if i > 0 {
			s.emit(StateChange{State: StateConnecting, Transport: t})
		}
		err = s.runTransport(ctx, t, sess)
		if sess.opened {
			if s.opts.Transport == TransportAuto {
				s.working = t
			}
			return err
		}
		var refused *refusedError
		if !errors.As(err, &refused) {
			return err
		}
		if refused.credentials() {
			// Not the transport's fault: every transport is the same URL
			// with the same token, and the next would be refused alike.
			return refused.err
		}
		if i == len(order)-1 || ctx.Err() != nil {
			return err
		}
		s.c.log.Info("transport refused; falling back", "stream", s.stream.String(), "transport", t, "next", order[i+1], "err", err)
	}
	return err
}

// runTransport runs one connection over t.
func (s *Subscription) runTransport(ctx context.Context, t Transport, sess *session) error {
	switch t {
	case TransportWebSocket:
		return s.runWS(ctx, sess)
	case TransportSSE:
		return s.runSSE(ctx, sess)
	case TransportLongPoll:
		return s.runPoll(ctx, sess, TransportLongPoll, s.opts.LongPollWait)
	case TransportPoll:
		return s.runPoll(ctx, sess, TransportPoll, 0)
	}
	return fmt.Errorf("unknown transport %q", t)
}

// query returns the subscribe request's query: since= the position, and
// user= for presence.
func (s *Subscription) query() url.Values {
	q := url.Values{}
	if s.hasPos {
		q.Set("since", s.pos.String())
	}
	if s.opts.User != "" {
		q.Set("user", s.opts.User)
	}
	return q
}
