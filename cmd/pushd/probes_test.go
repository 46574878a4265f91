package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
	"github.com/pushd/push/server/boltstore"
)

// The probes: what an attacker tried against pushd, run again against a
// real pushd process, each bounded in how many requests it makes and how
// long it may take (probeTime). Beside them, TestChaosMalformedFlood
// floods a server with malformed requests.

// probeTime bounds each probe.
const probeTime = time.Minute

// probeCtx is a context that ends after probeTime or with the test.
func probeCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), probeTime)
	t.Cleanup(cancel)
	return ctx
}

// probeToken mints a token for user, for every room, with publish and
// tasks.
func probeToken(t *testing.T, user string) string {
	t.Helper()
	return token(t, user, server.Claims{Rooms: []string{"*"}, Publish: true, Tasks: true})
}

// concurrently runs fn(i) for i in [0, n) on 16 goroutines.
func concurrently(n int, fn func(i int)) {
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range jobs {
				fn(i)
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
}

// Probe: 100 subscriptions with one token under --max-conns-per-user 64,
// without ?user=, over SSE, WebSocket and the tasks stream, each from an
// address of its own behind a trusted proxy: 64 are let in, 36 get 429.
func TestProbeConnsPerUserHolds(t *testing.T) {
	p := startPushd(t, "--store", "memory", "--auth-secret-file", secretFile(t), "--max-conns-per-user", "64",
		"--max-conns-per-ip", "1000", "--trusted-proxies", "127.0.0.1")
	tok := probeToken(t, "ann")
	const tries = 100
	var in, refused atomic.Int64
	var mu sync.Mutex
	var subs []*pushdtest.Subscriber
	concurrently(tries, func(i int) {
		r := p.WithHeader("Authorization", "Bearer "+tok, "X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i))
		kind, path := pushdtest.SSE, pushdtest.RoomPath("lobby")
		switch i % 3 {
		case 1:
			kind = pushdtest.WS
		case 2:
			path = pushdtest.TasksPath
		}
		sub, err := r.TrySubscribe(kind, path, pushdtest.SubOptions{})
		var re *pushdtest.RefusedError
		switch {
		case err == nil:
			in.Add(1)
			mu.Lock()
			subs = append(subs, sub)
			mu.Unlock()
		case errors.As(err, &re) && re.Status == http.StatusTooManyRequests:
			refused.Add(1)
		default:
			t.Errorf("subscription %d: %v", i, err)
		}
	})
	for _, sub := range subs {
		sub.Close()
	}
	if in.Load() != 64 || refused.Load() != tries-64 {
		t.Fatalf("%d subscriptions with one token: %d let in, %d refused with 429; want 64 and %d", tries, in.Load(), refused.Load(), tries-64)
	}
}

// Probe: a page whose name is rebound to 127.0.0.1 (Host and Origin its
// own name) can neither publish, read, open a WebSocket nor start a task
// on an open pushd; the profiles answer it neither, and show no secret
// even to a loopback client.
func TestProbeDNSRebinding(t *testing.T) {
	p := startPushd(t, "--store", "memory")
	host := "rebind.example:" + p.URL[strings.LastIndex(p.URL, ":")+1:]
	evil := p.WithHeader("Host", host, "Origin", "http://"+host)
	for _, a := range []pushdtest.Answer{
		evil.Post(t, "/v1/rooms/lobby/messages", `{"user":"mallory","text":"hi"}`),
		evil.Get(t, pushdtest.RoomPath("lobby")+"?since=0&wait=0"),
		evil.Post(t, "/v1/tasks", `{"kind":"demo","total":3}`),
	} {
		a.WantError(t, http.StatusMisdirectedRequest, protocol.CodeMisdirected)
	}
	var re *pushdtest.RefusedError
	if _, err := evil.TrySubscribe(pushdtest.WS, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{}); !errors.As(err, &re) || re.Status != http.StatusMisdirectedRequest {
		t.Fatalf("a WebSocket from the rebound page: %v; want 421", err)
	}
	if evs := p.History(t, pushdtest.RoomPath("lobby")); len(evs) != 0 {
		t.Fatalf("the rebound page left %d events", len(evs))
	}

	pprofAddr := pushdtest.FreeAddr(t)
	startPushd(t, "--store", "memory", "--auth-secret", testSecret, "--pprof", pprofAddr)
	for _, c := range []struct {
		host string
		want int
	}{{"rebind.example", http.StatusMisdirectedRequest}, {pprofAddr, http.StatusOK}} {
		req, err := http.NewRequestWithContext(probeCtx(t), http.MethodGet, "http://"+pprofAddr+"/debug/pprof/cmdline", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = c.host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want || strings.Contains(string(body), testSecret) {
			t.Fatalf("/debug/pprof/cmdline for Host %s: %d %q; want %d without the secret", c.host, resp.StatusCode, body, c.want)
		}
	}
}

// Probe: reading and subscribing to thousands of new rooms stores nothing
// and leaves nothing in memory; a short poll with ?user= publishes
// neither login nor logout.
func TestProbeReadingCreatesNothing(t *testing.T) {
	data := t.TempDir()
	p := startPushd(t, "--data", data, "--presence-grace", "100ms")
	file := filepath.Join(data, boltstore.FileName)
	size := func() int64 {
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	p.Publish(t, "warm", "ann", "the file has a stream")
	before, streams := size(), metric(t, p, "pushd_streams")
	const rooms, subscribed = 2000, 100
	concurrently(rooms, func(i int) {
		p.Poll(pushdtest.GoTB{TB: t}, pushdtest.RoomPath(fmt.Sprintf("probe-%d", i)), fmt.Sprintf("since=0&wait=0&user=u%d", i%10))
	})
	concurrently(subscribed, func(i int) {
		kind := []string{pushdtest.WS, pushdtest.SSE}[i%2]
		sub, err := p.TrySubscribe(kind, pushdtest.RoomPath(fmt.Sprintf("sub-%d", i)), pushdtest.SubOptions{})
		if err != nil {
			t.Errorf("subscribe %d: %v", i, err)
			return
		}
		sub.Close()
	})
	testwait.Until(t, probeTime, 10*time.Millisecond, func() error {
		if n := metric(t, p, "pushd_streams"); n != streams {
			return fmt.Errorf("%v streams in memory after reading %d new rooms; want %v as before", n, rooms+subscribed, streams)
		}
		return nil
	})
	if grown := size() - before; grown > 64<<10 {
		t.Fatalf("reading %d new rooms grew the data file by %d bytes", rooms+subscribed, grown)
	}
	for i := range 10 {
		if evs := p.History(t, pushdtest.RoomPath(fmt.Sprintf("probe-%d", i))); len(evs) != 0 {
			t.Fatalf("a short poll with ?user= left %s in its room", pushdtest.Summary(evs))
		}
	}
}

// metric reads one sample of p's /metrics.
func metric(t *testing.T, p *pushdtest.Process, sample string) float64 {
	t.Helper()
	n, err := p.Metric(t, sample)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// starts makes n task starts of body as the token's user, and counts
// those created and those refused with 429 and Retry-After.
func starts(t *testing.T, r *pushdtest.Remote, n int, body string) (created, refused int) {
	t.Helper()
	var c, x atomic.Int64
	concurrently(n, func(int) {
		a := r.Request(pushdtest.GoTB{TB: t}, probeCtx(t), http.MethodPost, "/v1/tasks", body)
		switch {
		case a.Status == http.StatusCreated:
			c.Add(1)
		case a.Status == http.StatusTooManyRequests && a.Header.Get("Retry-After") != "":
			x.Add(1)
		default:
			t.Errorf("start: %d %s", a.Status, a.Body)
		}
	})
	return int(c.Load()), int(x.Load())
}

// Probe: task starts have a rate per user, the queue a bound, external
// tasks a bound of their own, and a SIGTERM with a full queue ends within
// --shutdown-timeout and a second.
func TestProbeTaskBounds(t *testing.T) {
	secret := secretFile(t)
	p := startPushd(t, "--store", "memory", "--auth-secret-file", secret, "--max-tasks", "1")
	ann := p.WithHeader("Authorization", "Bearer "+probeToken(t, "ann"))
	if created, refused := starts(t, ann, 200, `{"kind":"demo","total":5,"interval":"1ms"}`); created > 30 || created+refused != 200 {
		t.Fatalf("200 starts by one user at the default rate: %d created, %d refused; want the burst of 20 and a few", created, refused)
	}

	const timeout = 3 * time.Second
	p = startPushd(t, "--store", "memory", "--auth-secret-file", secret, "--max-tasks", "1", "--task-rate", "0",
		"--max-external-tasks", "50", "--shutdown-timeout", timeout.String())
	ann = p.WithHeader("Authorization", "Bearer "+probeToken(t, "ann"))
	if created, refused := starts(t, ann, 1200, `{"kind":"demo","total":1000,"interval":"1h"}`); created != 1001 || refused != 199 {
		t.Fatalf("1,200 starts with one running: %d created, %d refused; want 1 running, 1,000 queued and 199 refused", created, refused)
	}
	if created, refused := starts(t, ann, 60, `{"kind":"external"}`); created != 50 || refused != 10 {
		t.Fatalf("60 external starts under --max-external-tasks 50: %d created, %d refused", created, refused)
	}
	// Connections the client opened and never used would hold the HTTP
	// server's shutdown for 5 s (net/http's rule for new connections).
	p.Client.CloseIdleConnections()
	start := time.Now()
	p.Signal(t, syscall.SIGTERM)
	err := p.Wait(t)
	if took := time.Since(start); took > timeout+time.Second {
		t.Fatalf("SIGTERM with 1,000 queued took %s; want at most %s and a second", took, timeout)
	}
	if err != nil {
		t.Fatalf("pushd exited with %v after SIGTERM; want 0", err)
	}
}

// Probe: a message that would clear a terminal and retitle it is refused,
// so `pushtui chat --json | jq -r .text` never prints one; bidi and
// zero-width characters are taken (pushtui shows them as markers).
func TestProbeTextThatReachesTerminals(t *testing.T) {
	p := startPushd(t, "--store", "memory")
	e := p.Post(t, "/v1/rooms/lobby/messages", `{"user":"mallory","text":"\u001b]0;pwned\u0007\u001b[2J"}`).
		WantError(t, http.StatusBadRequest, protocol.CodeInvalidParam)
	if !strings.Contains(e.Message, "U+001B (ESC) at byte 0") {
		t.Fatalf("refusal %q does not say which character where", e.Message)
	}
	p.Expect(t, http.MethodPost, "/v1/rooms/lobby/messages", `{"user":"mallory","text":"invoice\u202efdp.exe"}`, http.StatusCreated, nil)
	for _, ev := range p.History(t, pushdtest.RoomPath("lobby")) {
		if strings.ContainsFunc(ev.Text, protocol.IsControl) {
			t.Fatalf("the room holds a control character: %q", ev.Text)
		}
	}
}

// Probe: WebSocket clients that never read are dropped and counted, and
// a slow body gets its 408 with the read and write timeouts alike.
func TestProbeSlowClientsAreCountedAndAnswered(t *testing.T) {
	p := startPushd(t, "--store", "memory", "--heartbeat", "200ms", "--write-timeout", "500ms", "--read-timeout", "500ms")
	const stuck = 5
	for range stuck {
		p.DialWS(t, pushdtest.RoomPath("lobby"), nil) // never read, never answer a ping
	}
	p.WaitConnections(t, "ws", 0)
	testwait.Until(t, probeTime, 10*time.Millisecond, func() error {
		if n := metric(t, p, "pushd_slow_consumer_drops_total"); n != stuck {
			return fmt.Errorf("pushd_slow_consumer_drops_total %v; want %d", n, stuck)
		}
		return nil
	})

	addr := strings.TrimPrefix(p.URL, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(probeTime))
	fmt.Fprintf(conn, "POST /v1/rooms/lobby/messages HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"user\":", addr)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a slow body: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("a slow body: %d; want 408", resp.StatusCode)
	}
}
