package server_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// bigRoomSubs is how many subscribers BenchmarkBigRoom connects: each is
// two open files in this process (its end and the server's), and these
// machines allow 20,000 per process.
const bigRoomSubs = 5000

// BenchmarkBigRoom times the wake and fan-out of one large room over real
// 127.0.0.1 sockets: bigRoomSubs subscribers, every one parked, then one
// publish, and the op ends when the last subscriber has the event. It
// reports ns/delivery (the op over the subscribers: what one delivery
// costs the server and the clients together, on all CPUs), cpu-ns/delivery
// (the CPU time the process spent on it, which the machine's other work
// moves less) and the
// latency from the publish to each delivery: p50, p99 and last (the
// slowest subscriber, averaged over ops), the figure a big room's tail
// comes from.
func BenchmarkBigRoom(b *testing.B) {
	for _, tr := range []string{"ws", "sse"} {
		b.Run(tr, func(b *testing.B) { benchBigRoom(b, tr) })
	}
}

func benchBigRoom(b *testing.B, transport string) {
	cfg := server.DefaultConfig()
	cfg.Limits = server.Limits{}
	cfg.Heartbeat = time.Hour
	p := pushdtest.Start(b, cfg, pushdtest.LogLevel(99))
	hub := p.Srv().Hub()
	const room = "big"
	stream := protocol.RoomStream(room)
	cur := p.Head(b, "/v1/rooms/"+room+"/events")
	path := "/v1/rooms/" + room + "/events?since=" + cur.String()
	addr := strings.TrimPrefix(p.URL, "http://")

	var (
		got    atomic.Int64 // deliveries of the current op
		allIn  = make(chan struct{}, 1)
		recv   = make([]time.Time, bigRoomSubs) // when each subscriber got the current op's event
		failed atomic.Pointer[error]
		wg     sync.WaitGroup
		conns  []net.Conn
	)
	b.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
		wg.Wait()
	})
	for i := range bigRoomSubs {
		c, next, err := dialBigRoom(addr, path, transport)
		if err != nil {
			b.Fatalf("subscriber %d: %v", i, err)
		}
		conns = append(conns, c)
		wg.Go(func() {
			for {
				if err := next(); err != nil {
					if !isClosedConn(err) {
						failed.CompareAndSwap(nil, &err)
						allIn <- struct{}{}
					}
					return
				}
				recv[i] = time.Now()
				if got.Add(1) == bigRoomSubs {
					allIn <- struct{}{}
				}
			}
		})
	}
	parked := func() {
		for server.ParkedSubscribers(hub, stream) < bigRoomSubs {
			time.Sleep(time.Millisecond) // a benchmark's poll, not a test's wait
		}
	}
	publish := func() time.Time {
		got.Store(0)
		start := time.Now()
		p.PublishDirect(b, room, "alice", "a message to a big room")
		select {
		case <-allIn:
		case <-time.After(pushdtest.Timeout):
			b.Fatalf("%d of %d subscribers got the event", got.Load(), bigRoomSubs)
		}
		if err := failed.Load(); err != nil {
			b.Fatal(*err)
		}
		return start
	}
	parked()
	publish() // every subscriber is in the room
	var lat []time.Duration
	var last, total, cpu time.Duration
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		parked()
		b.StartTimer()
		cpu0 := processCPU()
		start := publish()
		cpu += processCPU() - cpu0
		end := slices.MaxFunc(recv, time.Time.Compare)
		total += end.Sub(start)
		last += end.Sub(start)
		for _, t := range recv {
			lat = append(lat, t.Sub(start))
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	n := float64(b.N)
	b.ReportMetric(float64(total.Nanoseconds())/(n*bigRoomSubs), "ns/delivery")
	b.ReportMetric(float64(cpu.Nanoseconds())/(n*bigRoomSubs), "cpu-ns/delivery")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1e3, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1e3, "p99-ms")
	b.ReportMetric(float64(last.Microseconds())/1e3/n, "last-ms")
}

// processCPU is the CPU time the process has used, user and system: the
// cost of a fan-out on a machine whose other work moves the wall clock.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// isClosedConn reports whether err is the end of a connection the
// benchmark closed.
func isClosedConn(err error) bool {
	return err == io.EOF || strings.Contains(err.Error(), "use of closed network connection")
}

// dialBigRoom subscribes over transport and returns the connection and a
// func that reads the next event's frame.
func dialBigRoom(addr, path, transport string) (net.Conn, func() error, error) {
	c, err := net.DialTimeout("tcp", addr, pushdtest.Timeout)
	if err != nil {
		return nil, nil, err
	}
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\n"
	if transport == "ws" {
		req += "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	} else {
		req += "Accept: text/event-stream\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		c.Close()
		return nil, nil, err
	}
	br := bufio.NewReaderSize(c, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	if want := map[string]int{"ws": http.StatusSwitchingProtocols, "sse": http.StatusOK}[transport]; resp.StatusCode != want {
		c.Close()
		return nil, nil, fmt.Errorf("subscribe: %s", resp.Status)
	}
	if transport == "ws" {
		return c, func() error { return skipWSFrame(br) }, nil
	}
	return c, func() error { return skipSSEEvent(br) }, nil
}

// skipWSFrame reads one data frame and drops it.
func skipWSFrame(br *bufio.Reader) error {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return err
	}
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		var x [2]byte
		if _, err := io.ReadFull(br, x[:]); err != nil {
			return err
		}
		n = int(binary.BigEndian.Uint16(x[:]))
	case 127:
		return fmt.Errorf("unexpected frame length")
	}
	_, err := br.Discard(n)
	return err
}

// skipSSEEvent reads up to the end of the next event with an id (the
// retry line comes first) and drops it.
func skipSSEEvent(br *bufio.Reader) error {
	seen := false
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if bytes.HasPrefix(line, []byte("id: ")) {
			seen = true
		}
		if len(line) == 1 && seen {
			return nil
		}
	}
}
