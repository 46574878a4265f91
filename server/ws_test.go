package server

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"

	"github.com/pushd/push/protocol"
)

// ws.go sends events as frames it builds itself, written to the hijacked
// connection beside coder/websocket's Conn, which it uses only for the
// handshake, pings, pongs and the close. That holds only while the library
// takes the connection through the http.Hijacker it is given
// (hijackRecorder), and writes each frame of its own, whole and flushed,
// through the bufio.Writer that Hijack returned (so through connWriter,
// whose lock keeps the two writers' frames apart), never straight to the
// connection. A version of the library that did otherwise would garble
// streams now and then; this test fails on it instead.
func TestWebSocketLibraryWritesOnlyThroughTheHijackedWriter(t *testing.T) {
	events := make([]*entry, 6)
	for i := range events {
		var err error
		events[i], err = encodeEntry(&protocol.Event{Seq: uint64(i + 1), Epoch: "e", Stream: "room/a", Type: protocol.TypeMessage, User: "u", Text: fmt.Sprint("event ", i+1)})
		if err != nil {
			t.Fatal(err)
		}
	}
	clientPinged := make(chan struct{})
	served := make(chan error, 1)
	var guard *guardedConn
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served <- func() error {
			gw := &guardedWriter{ResponseWriter: w}
			hw := &hijackRecorder{ResponseWriter: gw}
			c, err := websocket.Accept(hw, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
			if err != nil {
				return err
			}
			if hw.conn == nil || hw.out == nil || gw.conn == nil {
				return errors.New("websocket.Accept did not hijack the connection through the ResponseWriter it was given")
			}
			guard = gw.conn
			guard.out.Store(hw.out)
			go readAndDiscard(c)
			sk := &wsSink{c: c, out: hw.out}
			if err := sk.send(events[:3]); err != nil {
				return err
			}
			if err := c.Ping(r.Context()); err != nil { // the client's pong comes through readAndDiscard
				return fmt.Errorf("ping: %w", err)
			}
			if err := sk.send(events[3:]); err != nil {
				return err
			}
			<-clientPinged // the library has answered with a pong
			sk.end(protocol.CloseShutdown, "")
			return nil
		}()
	}))
	defer ts.Close()

	ctx := t.Context()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	var got []string
	readErr := make(chan error, 1)
	go func() {
		for {
			_, msg, err := c.Read(ctx)
			if err != nil {
				readErr <- err
				return
			}
			got = append(got, string(msg))
		}
	}()
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("client ping: %v", err)
	}
	close(clientPinged)
	err = <-readErr
	if err := <-served; err != nil {
		t.Fatal(err)
	}

	if status := websocket.CloseStatus(err); status != protocol.CloseCodeServiceRestart {
		t.Fatalf("the stream ended with %v; want close %d", err, protocol.CloseCodeServiceRestart)
	}
	if len(got) != len(events) {
		t.Fatalf("the client read %d messages; want %d: %q", len(got), len(events), got)
	}
	for i, e := range events {
		if got[i] != string(e.json()) {
			t.Fatalf("message %d is %q; want %q", i, got[i], e.json())
		}
	}
	stray, opcodes, err := guard.report()
	if err != nil {
		t.Fatal(err)
	}
	if stray > 0 {
		t.Fatalf("%d writes reached the connection without connWriter: the library writes frames of its own around it", stray)
	}
	for op, want := range map[byte]int{0x1: len(events), 0x8: 1, 0x9: 1, 0xA: 1} {
		if opcodes[op] != want {
			t.Errorf("the server sent %d frames of opcode %#x through connWriter; want %d (all frames: %v)", opcodes[op], op, want, opcodes)
		}
	}
}

// guardedWriter hands out its connection wrapped in a guardedConn.
type guardedWriter struct {
	http.ResponseWriter
	conn *guardedConn
}

func (g *guardedWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := g.ResponseWriter.(http.Hijacker).Hijack()
	if err != nil {
		return nil, nil, err
	}
	g.conn = &guardedConn{Conn: c}
	return g.conn, brw, nil
}

// guardedConn records what is written to the connection once out is set,
// and counts the writes that come while out's lock is free: those are not
// connWriter's.
type guardedConn struct {
	net.Conn
	out atomic.Pointer[connWriter]

	mu    sync.Mutex
	stray int
	sent  []byte
}

func (g *guardedConn) Write(p []byte) (int, error) {
	if out := g.out.Load(); out != nil {
		g.mu.Lock()
		if out.mu.TryLock() {
			out.mu.Unlock()
			g.stray++
		}
		g.sent = append(g.sent, p...)
		g.mu.Unlock()
	}
	return g.Conn.Write(p)
}

// report returns the stray writes and the opcodes of the frames sent, by
// count (server frames are not masked).
func (g *guardedConn) report() (stray int, opcodes map[byte]int, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	opcodes = make(map[byte]int)
	b := g.sent
	for len(b) > 0 {
		if len(b) < 2 || b[0]&0x80 == 0 || b[1]&0x80 != 0 {
			return 0, nil, fmt.Errorf("the bytes sent are not whole, final, unmasked frames: % x", b[:min(len(b), 16)])
		}
		n, h := uint64(b[1]&0x7f), 2
		switch n {
		case 126:
			n, h = uint64(binary.BigEndian.Uint16(b[2:])), 4
		case 127:
			n, h = binary.BigEndian.Uint64(b[2:]), 10
		}
		if uint64(len(b)-h) < n {
			return 0, nil, fmt.Errorf("a frame of %d bytes is cut short", n)
		}
		opcodes[b[0]&0x0f]++
		b = b[h+int(n):]
	}
	return g.stray, opcodes, nil
}
