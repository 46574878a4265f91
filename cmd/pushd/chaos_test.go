package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushd/push/client"
	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
)

// The chaos suite: real pushd processes, crashes, storms and floods. It is
// slower than the rest, so -short skips it; CI runs it.

// chaosPushd starts pushd with args for a chaos test, without the
// per-client limits (every test client comes from one address); -short
// skips the test.
func chaosPushd(t *testing.T, args ...string) *pushdtest.Process {
	t.Helper()
	if testing.Short() {
		t.Skip("chaos suite: runs without -short")
	}
	return startPushd(t, append(noLimits, args...)...)
}

// noLimits lifts the per-client limits: every test client comes from one
// address.
var noLimits = []string{"--publish-rate", "0", "--max-conns-per-ip", "0", "--max-conns-per-user", "0", "--max-long-polls-per-ip", "0"}

// headClient returns a client of p as user, and the cursor of the head of
// room.
func headClient(t *testing.T, ctx context.Context, p *pushdtest.Process, user string, room client.Stream) (*client.Client, protocol.Cursor) {
	t.Helper()
	c, err := client.New(p.URL, client.WithUser(user))
	if err != nil {
		t.Fatal(err)
	}
	head, err := c.Cursor(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	return c, head
}

// follower collects what one subscription delivers.
type follower struct {
	transport client.Transport
	mu        sync.Mutex
	seqs      []uint64
	resets    []string // each reset's reason and position
}

func (f *follower) last() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.seqs) == 0 {
		return 0
	}
	return f.seqs[len(f.seqs)-1]
}

func TestChaosKillNineWhileSubscribersFollow(t *testing.T) {
	addr, data := pushdtest.FreeAddr(t), t.TempDir()
	args := []string{"--addr", addr, "--data", data, "--long-poll-wait", "2s"}
	p := chaosPushd(t, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	room := client.Room("chaos")
	pub, start := headClient(t, ctx, p, "publisher", room)

	const subscribers = 200
	transports := []client.Transport{client.TransportWebSocket, client.TransportSSE, client.TransportLongPoll, client.TransportAuto}
	followers := make([]*follower, subscribers)
	var wg sync.WaitGroup
	for i := range followers {
		f := &follower{transport: transports[i%len(transports)]}
		followers[i] = f
		c, err := client.New(p.URL)
		if err != nil {
			t.Fatal(err)
		}
		sub := c.Subscribe(ctx, room, client.SubscribeOptions{Transport: f.transport, Since: start.String(),
			MinBackoff: 20 * time.Millisecond, MaxBackoff: 300 * time.Millisecond, LongPollWait: 2 * time.Second})
		defer sub.Close()
		wg.Go(func() {
			for ev := range sub.Events() {
				f.mu.Lock()
				if ev.Type == protocol.TypeReset {
					f.resets = append(f.resets, fmt.Sprintf("%s at %s after %d events", ev.Reason, ev.Cursor(), len(f.seqs)))
				} else {
					f.seqs = append(f.seqs, ev.Seq)
				}
				f.mu.Unlock()
			}
		})
	}

	// Publishers post while the server is killed twice; a publish counts
	// only once it was acknowledged.
	var acked sync.Map // seq -> text
	var nacked atomic.Int64
	var posted atomic.Int64
	stop := make(chan struct{})
	var pubs sync.WaitGroup
	for w := range 4 {
		pubs.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
				ev, err := pub.Publish(pctx, "chaos", fmt.Sprintf("w%d-%d", w, i))
				pcancel()
				if err != nil {
					nacked.Add(1)
					continue
				}
				acked.Store(ev.Seq, ev.Text)
				posted.Add(1)
			}
		})
	}
	waitPosted := func(n int64) {
		t.Helper()
		testwait.Until(t, 30*time.Second, 10*time.Millisecond, func() error {
			if got := posted.Load(); got < n {
				return fmt.Errorf("only %d publishes acknowledged, waiting for %d", got, n)
			}
			return nil
		})
	}
	for range 2 {
		waitPosted(posted.Load() + 100)
		p.Kill(t)
		p = chaosPushd(t, args...)
	}
	waitPosted(posted.Load() + 100)
	close(stop)
	pubs.Wait()

	var maxAcked uint64
	ackedCount := 0
	acked.Range(func(k, _ any) bool {
		maxAcked = max(maxAcked, k.(uint64))
		ackedCount++
		return true
	})
	// Every follower catches up with the last acknowledged event.
	testwait.Until(t, 90*time.Second, 20*time.Millisecond, func() error {
		for i, f := range followers {
			if last := f.last(); last < maxAcked {
				return fmt.Errorf("follower %d (%s) is at seq %d; the last acknowledged is %d", i, f.transport, last, maxAcked)
			}
		}
		return nil
	})
	cancel()
	wg.Wait()

	for i, f := range followers {
		f.mu.Lock()
		seqs, resets := f.seqs, f.resets
		f.mu.Unlock()
		if len(resets) > 0 {
			t.Errorf("follower %d (%s) got resets (%s); the durable store keeps its epoch across crashes", i, f.transport, strings.Join(resets, "; "))
		}
		got := make(map[uint64]bool, len(seqs))
		for j, seq := range seqs {
			if got[seq] {
				t.Fatalf("follower %d (%s) got seq %d twice", i, f.transport, seq)
			}
			got[seq] = true
			if j > 0 && seq != seqs[j-1]+1 {
				t.Fatalf("follower %d (%s): seq %d after %d: out of order or a gap", i, f.transport, seq, seqs[j-1])
			}
		}
		missing := 0
		acked.Range(func(k, _ any) bool {
			if !got[k.(uint64)] {
				missing++
			}
			return true
		})
		if missing > 0 {
			t.Fatalf("follower %d (%s) is missing %d of %d acknowledged events", i, f.transport, missing, ackedCount)
		}
	}
	t.Logf("%d followers got all %d acknowledged events (%d publishes failed during the crashes) exactly once, in order", subscribers, ackedCount, nacked.Load())
}

func TestChaosReconnectStorm(t *testing.T) {
	p := chaosPushd(t, "--store", "memory")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	room := client.Room("storm")
	c, start := headClient(t, ctx, p, "storm", room)
	const clients = 1000
	var connected, got atomic.Int64
	var refused atomic.Int64
	var wg sync.WaitGroup
	release := make(chan struct{})
	for i := range clients {
		wg.Go(func() {
			tr := []client.Transport{client.TransportWebSocket, client.TransportSSE}[i%2]
			cc, err := client.New(p.URL)
			if err != nil {
				refused.Add(1)
				return
			}
			<-release // all at once
			sub := cc.Subscribe(ctx, room, client.SubscribeOptions{Transport: tr, Since: start.String(), MaxRetries: 1,
				OnState: func(sc client.StateChange) {
					if sc.State == client.StateConnected {
						connected.Add(1)
					}
				}})
			defer sub.Close()
			select {
			case ev, ok := <-sub.Events():
				if ok && ev.Text == "after the storm" {
					got.Add(1)
				}
			case <-ctx.Done():
			}
			if err := sub.Err(); err != nil && ctx.Err() == nil {
				refused.Add(1)
			}
		})
	}
	close(release)
	testwait.Until(t, time.Minute, 10*time.Millisecond, func() error {
		if n := connected.Load(); n < clients && refused.Load() == 0 {
			return fmt.Errorf("%d of %d clients connected", n, clients)
		}
		return nil
	})
	if _, err := c.Publish(ctx, "storm", "after the storm"); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if refused.Load() > 0 || got.Load() != clients {
		t.Fatalf("of %d clients connecting at once: %d connected, %d got the event, %d failed", clients, connected.Load(), got.Load(), refused.Load())
	}
}

func TestChaosMalformedFlood(t *testing.T) {
	p := chaosPushd(t, "--store", "memory", "--read-timeout", "500ms", "--read-header-timeout", "500ms")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	room := client.Room("calm")
	legit, start := headClient(t, ctx, p, "legit", room)
	sub := legit.Subscribe(ctx, room, client.SubscribeOptions{Transport: client.TransportSSE, Since: start.String()})
	defer sub.Close()

	host := strings.TrimPrefix(p.URL, "http://")
	bad := []struct{ method, path, ctype, body string }{
		{"POST", "/v1/rooms/calm/messages", "application/json", `{"user":"x","text":`},
		{"POST", "/v1/rooms/calm/messages", "application/json", `{"user":"x","text":"hi","extra":1}`},
		{"POST", "/v1/rooms/calm/messages", "application/json", `{"user":"x","text":"` + strings.Repeat("a", 5000) + `"}`},
		{"POST", "/v1/rooms/calm/messages", "application/json", strings.Repeat("[", 100000)},
		{"POST", "/v1/rooms/calm/messages", "text/plain", `hi`},
		{"POST", "/v1/rooms/no%20pe/messages", "application/json", `{"user":"x","text":"hi"}`},
		{"GET", "/v1/rooms/calm/events?since=zz:%ff&wait=0", "", ""},
		{"GET", "/v1/rooms/calm/events?wait=forever", "", ""},
		{"DELETE", "/v1/rooms/calm/messages", "", ""},
		{"POST", "/v1/tasks", "application/json", `{"kind":"demo","total":-1}`},
		{"POST", "/v1/tasks/nope/progress", "application/json", `{"done":1}`},
		{"GET", "/" + strings.Repeat("x/", 2000), "", ""},
	}
	raw := []string{
		"GARBAGE\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: " + host + "\r\nX-Big: " + strings.Repeat("b", 64<<10) + "\r\n\r\n",
		"GET /v1/rooms/calm/events HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
		"POST /v1/rooms/calm/messages HTTP/1.1\r\nHost: " + host + "\r\nContent-Type: application/json\r\nContent-Length: 99999999\r\n\r\n{",
		"POST /v1/rooms/calm/messages HTTP/1.1\r\nHost: " + host + "\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"user\":",
		"GET /v1/rooms/calm/ev", // a request that never ends
	}
	var fiveXX, answered atomic.Int64
	hc := &http.Client{Timeout: 10 * time.Second}
	var flood sync.WaitGroup
	for w := range 8 {
		flood.Go(func() {
			for i := range 150 {
				if w%2 == 0 {
					b := bad[(i+w)%len(bad)]
					req, _ := http.NewRequestWithContext(ctx, b.method, p.URL+b.path, strings.NewReader(b.body))
					if b.ctype != "" {
						req.Header.Set("Content-Type", b.ctype)
					}
					resp, err := hc.Do(req)
					if err != nil {
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					answered.Add(1)
					if resp.StatusCode >= 500 {
						fiveXX.Add(1)
						t.Errorf("%s %.60s: %d", b.method, b.path, resp.StatusCode)
					}
					continue
				}
				conn, err := net.DialTimeout("tcp", host, 5*time.Second)
				if err != nil {
					continue
				}
				_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
				_, _ = io.WriteString(conn, raw[(i+w)%len(raw)])
				if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err == nil {
					answered.Add(1)
					if resp.StatusCode >= 500 {
						fiveXX.Add(1)
						t.Errorf("raw request %d: %d", (i+w)%len(raw), resp.StatusCode)
					}
				}
				conn.Close()
			}
		})
	}
	// Meanwhile the legitimate client keeps receiving.
	const legitMessages = 50
	for i := range legitMessages {
		if _, err := legit.Publish(ctx, "calm", fmt.Sprintf("m%d", i)); err != nil {
			t.Fatalf("legitimate publish during the flood: %v", err)
		}
	}
	received := 0
	for received < legitMessages {
		select {
		case ev := <-sub.Events():
			if ev.Type == protocol.TypeMessage {
				received++
			}
		case <-ctx.Done():
			t.Fatalf("legitimate subscriber got %d of %d messages during the flood", received, legitMessages)
		}
	}
	flood.Wait()
	if fiveXX.Load() > 0 || answered.Load() == 0 {
		t.Fatalf("flood: %d answers, %d of them 5xx", answered.Load(), fiveXX.Load())
	}
	// The server is still healthy.
	resp, err := hc.Get(p.URL + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz after the flood: %v %v", resp, err)
	}
	resp.Body.Close()
}
