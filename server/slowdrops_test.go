package server_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/server"
)

// waitDrops waits until /metrics counts n slow-consumer drops.
func waitDrops(t *testing.T, p *pushdtest.Server, n float64) {
	t.Helper()
	testwait.Until(t, pushdtest.Timeout, 5*time.Millisecond, func() error {
		got, err := p.Metric(t, "pushd_slow_consumer_drops_total")
		if err != nil {
			return err
		}
		if got != n {
			return fmt.Errorf("pushd_slow_consumer_drops_total %v; want %v", got, n)
		}
		return nil
	})
}

// Every slow-consumer drop is counted, whatever ended it: a socket that
// does not drain within the write timeout (WebSocket and SSE), and a
// WebSocket client that reads nothing, so answers no ping. A client that
// closes its connection is not counted.
func TestEverySlowConsumerDropIsCounted(t *testing.T) {
	for _, kind := range []string{pushdtest.WS, pushdtest.SSE} {
		t.Run("socket full "+kind, func(t *testing.T) {
			p := pushdtest.Start(t, server.Config{WriteTimeout: 100 * time.Millisecond, History: 100, TailSize: 8})
			if kind == pushdtest.WS {
				p.DialWS(t, pushdtest.RoomPath("lobby"), smallBufferClient(t))
			} else {
				rawSSE(t, p, pushdtest.RoomPath("lobby"))
			}
			p.WaitConnections(t, transportOf(kind), 1)
			testwait.Until(t, pushdtest.Timeout, time.Millisecond, func() error {
				p.PublishDirect(t, "lobby", "alice", bigText)
				if n, err := p.Connections(t, transportOf(kind)); err != nil || n != 0 {
					return fmt.Errorf("the stuck subscriber is still connected (%d, %v)", n, err)
				}
				return nil
			})
			waitDrops(t, p, 1)
		})
	}
	t.Run("no pong", func(t *testing.T) {
		p := pushdtest.Start(t, server.Config{Heartbeat: 50 * time.Millisecond, WriteTimeout: 100 * time.Millisecond})
		p.DialWS(t, pushdtest.RoomPath("lobby"), nil) // never read: no pong goes back
		p.WaitConnections(t, "ws", 1)
		p.WaitConnections(t, "ws", 0)
		waitDrops(t, p, 1)
	})
	t.Run("closed by the client", func(t *testing.T) {
		p := pushdtest.Start(t, server.Config{Heartbeat: 50 * time.Millisecond, WriteTimeout: time.Second})
		ws := p.Subscribe(t, pushdtest.WS, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{})
		sse := p.Subscribe(t, pushdtest.SSE, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{})
		ws.Close()
		sse.Close()
		p.WaitConnections(t, "ws", 0)
		p.WaitConnections(t, "sse", 0)
		p.Publish(t, "lobby", "alice", "after they left")
		waitDrops(t, p, 0)
	})
}
