package client

import (
	"bytes"
	"context"
	"errors"
	"net/http"

	"github.com/coder/websocket"

	"github.com/pushd/push/protocol"
)

// wsReadLimit bounds one WebSocket message: a batch of 128 events, each
// with up to a few KiB of text escaped, fits many times over.
const wsReadLimit = 32 << 20

// runWS reads one WebSocket connection: a text message per event, or with
// the batch subprotocol several events separated by "\n".
func (s *Subscription) runWS(ctx context.Context, sess *session) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wd := newWatchdog(s.opts.ConnectTimeout, cancel)
	defer wd.stop()

	header, err := s.c.header(ctx)
	if err != nil {
		return err
	}
	opts := &websocket.DialOptions{
		HTTPClient: s.c.hc,
		HTTPHeader: header,
		// The server pings an idle connection every heartbeat; that is
		// the sign of life the watchdog waits for.
		OnPingReceived: func(context.Context, []byte) bool {
			wd.kick()
			return true
		},
	}
	if s.opts.Batch {
		opts.Subprotocols = []string{protocol.BatchSubprotocol}
	}
	conn, resp, err := websocket.Dial(ctx, s.c.url(s.path, s.query()), opts)
	if err != nil {
		if werr := wd.err("websocket handshake"); werr != nil {
			// Something held the upgrade without answering.
			return &refusedError{transport: TransportWebSocket, err: werr, transient: true}
		}
		if resp == nil {
			if isDialError(err) || ctx.Err() != nil {
				return err // the server cannot be reached at all
			}
			// The request went out and the connection broke without an
			// answer, as some proxies do to upgrades.
			return &refusedError{transport: TransportWebSocket, err: err, transient: true}
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			return &refusedError{transport: TransportWebSocket, err: decodeError(resp)}
		}
		return &refusedError{transport: TransportWebSocket, err: err}
	}
	defer conn.CloseNow()
	conn.SetReadLimit(wsReadLimit)
	batch := conn.Subprotocol() == protocol.BatchSubprotocol
	sess.open(TransportWebSocket)
	wd.set(s.opts.IdleTimeout)
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			if werr := wd.err("websocket"); werr != nil {
				return werr
			}
			return wsError(err)
		}
		wd.kick()
		if typ != websocket.MessageText {
			continue // the protocol sends text only; ignore anything else
		}
		if !batch {
			if err := sess.deliverJSON(ctx, data, wd); err != nil {
				return err
			}
			continue
		}
		for line := range bytes.SplitSeq(data, []byte{'\n'}) {
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			if err := sess.deliverJSON(ctx, line, wd); err != nil {
				return err
			}
		}
	}
}

// wsError turns the end of a WebSocket read into the subscription's view
// of it: a close frame from the server is a CloseError (1008 a refusal,
// 1012, 4008 and the rest a reason to reconnect).
func wsError(err error) error {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return &CloseError{Code: int(ce.Code), Reason: ce.Reason}
	}
	return err
}
