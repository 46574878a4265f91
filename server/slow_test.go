package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// bigText is a payload large enough that a few hundred events fill any
// socket buffer between the server and a client that does not read.
var bigText = strings.Repeat("0123456789abcdef", 4096) // 64 KiB

// bigTexts returns n distinct large texts: "<i>:" and the payload.
func bigTexts(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = strconv.Itoa(i+1) + ":" + bigText
	}
	return out
}

// A subscriber that never reads fills its socket buffers and its writer
// blocks; every other subscriber still gets every event while it is stuck.
func TestStuckSubscriberDoesNotDelayOthers(t *testing.T) {
	p := pushdtest.Start(t, server.Config{WriteTimeout: time.Minute})
	head := p.Head(t, pushdtest.RoomPath("lobby"))
	stuck := rawSSE(t, p, "/v1/rooms/lobby/events?since="+head.String())
	p.WaitConnections(t, "sse", 1)

	kinds := []string{pushdtest.WS, pushdtest.WSBatch, pushdtest.SSE, pushdtest.LongPoll}
	subs := make([]*pushdtest.Subscriber, len(kinds))
	for i, kind := range kinds {
		subs[i] = p.Subscribe(t, kind, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{Since: head.String()})
	}
	const n = 100 // 6.25 MiB, over the socket buffers of the stuck one
	want := bigTexts(n)
	var wg sync.WaitGroup
	for i, sub := range subs {
		wg.Go(func() {
			pushdtest.CheckMessages(pushdtest.GoTB{TB: t}, sub.NextN(pushdtest.GoTB{TB: t}, n), head.Epoch, 1, want)
			t.Logf("%s got all %d events", kinds[i], n)
		})
	}
	for _, text := range want {
		p.PublishDirect(t, "lobby", "alice", text)
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// The stuck one was still connected all along, and still is: it has
	// not been dropped, only left behind. Once it reads, it gets
	// everything in order.
	if got, err := p.Connections(t, "sse"); err != nil || got != 2 {
		t.Fatalf("%d SSE connections (%v); want the stuck one and the reader", got, err)
	}
	resp, br := readRawSSE(t, stuck)
	defer resp.Body.Close()
	if f, err := pushdtest.ReadSSEFrame(br); err != nil || f.Retry != "2000" {
		t.Fatalf("first frame %+v, %v", f, err)
	}
	var got []protocol.Event
	for len(got) < n {
		f, err := pushdtest.ReadSSEFrame(br)
		if err != nil {
			t.Fatalf("after %d events: %v", len(got), err)
		}
		if len(f.Comments) > 0 {
			continue
		}
		got = append(got, pushdtest.CheckSSEEvent(t, f))
	}
	pushdtest.CheckMessages(t, got, head.Epoch, 1, want)
}

// A subscriber that reads too slowly and falls more than MaxLag events
// behind is cut off with close code 4008 (WebSocket) or an "event: close"
// frame (SSE), reason slow_consumer; it reconnects from its cursor and
// loses nothing.
func TestSlowConsumerCutOffResumesWithoutLoss(t *testing.T) {
	for _, kind := range []string{pushdtest.WS, pushdtest.SSE} {
		t.Run(kind, func(t *testing.T) {
			p := pushdtest.Start(t, server.Config{MaxLag: 16, WriteTimeout: time.Minute})
			const n = 100
			want := bigTexts(n + 1)
			var got []protocol.Event
			var closed error
			var readFirst, read func() (protocol.Event, error)
			switch kind {
			case pushdtest.WS:
				c := p.DialWS(t, "/v1/rooms/lobby/events", smallBufferClient(t))
				read = func() (protocol.Event, error) {
					ctx, cancel := context.WithTimeout(context.Background(), pushdtest.Timeout)
					defer cancel()
					_, msg, err := c.Read(ctx)
					if err != nil {
						return protocol.Event{}, err
					}
					return pushdtest.CheckEvent(t, msg), nil
				}
				readFirst = read
			case pushdtest.SSE:
				conn := rawSSE(t, p, "/v1/rooms/lobby/events")
				p.WaitConnections(t, "sse", 1)
				var br *bufio.Reader
				read = func() (protocol.Event, error) {
					_ = conn.SetReadDeadline(time.Now().Add(pushdtest.Timeout))
					for {
						f, err := pushdtest.ReadSSEFrame(br)
						if err != nil {
							return protocol.Event{}, err
						}
						switch {
						case f.Event == "close":
							return protocol.Event{}, sseClose{f}
						case len(f.Comments) > 0 || f.Retry != "":
							continue
						}
						return pushdtest.CheckSSEEvent(t, f), nil
					}
				}
				readFirst = func() (protocol.Event, error) {
					_, br = readRawSSE(t, conn)
					return read()
				}
			}
			// One event while the subscriber keeps up: it is live.
			p.PublishDirect(t, "lobby", "alice", want[0])
			ev, err := readFirst()
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, ev)
			// Then a burst it does not read: its writer blocks on the full
			// socket, and the stream runs ahead.
			for _, text := range want[1:n] {
				p.PublishDirect(t, "lobby", "alice", text)
			}
			// Now it reads what reached it, and then the close.
			for {
				ev, err := read()
				if err != nil {
					closed = err
					break
				}
				got = append(got, ev)
			}
			switch kind {
			case pushdtest.WS:
				var ce websocket.CloseError
				if !errors.As(closed, &ce) || ce.Code != protocol.CloseCodeSlowConsumer || !strings.HasPrefix(ce.Reason, protocol.CloseSlowConsumer) {
					t.Fatalf("the slow WebSocket ended with %v; want close %d %s", closed, protocol.CloseCodeSlowConsumer, protocol.CloseSlowConsumer)
				}
			case pushdtest.SSE:
				var sc sseClose
				if !errors.As(closed, &sc) {
					t.Fatalf("the slow SSE stream ended with %v; want an \"event: close\" frame", closed)
				}
				var body struct{ Reason, Message string }
				if err := json.Unmarshal([]byte(sc.f.Data), &body); err != nil || body.Reason != protocol.CloseSlowConsumer || body.Message == "" || sc.f.HasID {
					t.Fatalf("close frame %+v; want no id and data {\"reason\":\"slow_consumer\",\"message\":...}", sc.f)
				}
			}
			if len(got) >= n {
				t.Fatalf("the slow subscriber got all %d events before the cut; the test did not make it slow", len(got))
			}
			t.Logf("cut off after %d of %d events", len(got), n)
			epoch := got[0].Epoch
			pushdtest.CheckMessages(t, got, epoch, 1, want[:len(got)])

			// It resumes from its cursor: exactly the rest, then live ones.
			rest := p.Subscribe(t, kind, pushdtest.RoomPath("lobby"), resumeOpts(kind, got[len(got)-1].Cursor().String()))
			pushdtest.CheckMessages(t, rest.NextN(t, n-len(got)), epoch, uint64(len(got)+1), want[len(got):n])
			p.PublishDirect(t, "lobby", "alice", want[n])
			pushdtest.CheckMessages(t, rest.NextN(t, 1), epoch, n+1, want[n:])
			p.WaitConnections(t, transportOf(kind), 1)
			if m, err := p.Metric(t, "pushd_slow_consumer_drops_total"); err != nil || m != 1 {
				t.Fatalf("pushd_slow_consumer_drops_total %v (%v); want 1", m, err)
			}
		})
	}
}

// sseClose is an "event: close" frame, as an error of the reader.
type sseClose struct{ f pushdtest.SSEFrame }

func (e sseClose) Error() string { return "SSE close: " + e.f.Data }

// With a small WriteTimeout a subscriber that never reads is dropped.
func TestWriteTimeoutDropsStuckSubscriber(t *testing.T) {
	for _, kind := range []string{pushdtest.WS, pushdtest.SSE} {
		t.Run(kind, func(t *testing.T) {
			p := pushdtest.Start(t, server.Config{WriteTimeout: 100 * time.Millisecond, History: 100, TailSize: 8})
			head := p.Head(t, pushdtest.RoomPath("lobby"))
			path := "/v1/rooms/lobby/events?since=" + head.String()
			var ws *websocket.Conn
			if kind == pushdtest.WS {
				ws = p.DialWS(t, path, smallBufferClient(t))
			} else {
				rawSSE(t, p, path)
			}
			p.WaitConnections(t, transportOf(kind), 1)
			published := 0
			testwait.Until(t, pushdtest.Timeout, time.Millisecond, func() error {
				p.PublishDirect(t, "lobby", "alice", bigText)
				published++
				n, err := p.Connections(t, transportOf(kind))
				if err != nil {
					return err
				}
				if n != 0 {
					return fmt.Errorf("the stuck %s subscriber is still connected after %d events", kind, published)
				}
				return nil
			})
			t.Logf("dropped after %d events of %d bytes", published, len(bigText))
			if ws != nil {
				// What it reads now is what reached it, then the end.
				ctx, cancel := context.WithTimeout(context.Background(), pushdtest.Timeout)
				defer cancel()
				var last protocol.Event
				for {
					_, msg, err := ws.Read(ctx)
					if err != nil {
						break
					}
					last = pushdtest.CheckEvent(t, msg)
				}
				if last.Seq >= uint64(published) {
					t.Fatalf("the dropped subscriber got all %d events", published)
				}
			}
		})
	}
}

// A body that does not arrive within the read timeout gets its 408 with
// the error body, with the read and write timeouts alike (as by default):
// the answer has the write timeout after the body's deadline.
func TestSlowBodyGets408WithEqualTimeouts(t *testing.T) {
	const timeout = 300 * time.Millisecond
	s := pushdtest.Start(t, server.Config{ReadTimeout: timeout, WriteTimeout: timeout})
	addr := strings.TrimPrefix(s.URL, "http://")
	for _, path := range []string{"/v1/rooms/lobby/messages", "/v1/tasks"} {
		resp, body := rawAnswer(t, s, fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"user\":", path, addr))
		if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(body, `"code":"timeout"`) {
			t.Fatalf("%s: slow body: %d %s; want 408 timeout", path, resp.StatusCode, body)
		}
	}
}

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
