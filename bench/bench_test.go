package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// TestMain fails the package if a run leaves a goroutine behind: Run must
// stop its subscribers, publishers, clients and in-process server.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// small returns options for a quick run over transport t. The timeout only
// turns a hang into a failure; nothing asserts on how long a run takes.
func small(t Transport) Options {
	o := DefaultOptions()
	o.Transport = t
	o.Subscribers = 20
	o.Messages = 50
	o.Timeout = time.Minute
	return o
}

// runOK runs o and fails t unless every subscriber got every message once
// and in order.
func runOK(t *testing.T, o Options) *Report {
	t.Helper()
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	var text strings.Builder
	_ = rep.WriteText(&text)
	t.Logf("\n%s", text.String())
	if err := rep.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
	want := int64(o.Subscribers) * int64(o.Messages)
	if rep.Deliveries != want || rep.Expected != want {
		t.Fatalf("deliveries %d of expected %d; want %d of %d", rep.Deliveries, rep.Expected, want, want)
	}
	if rep.Lost != 0 || rep.Duplicates != 0 || rep.OutOfOrder != 0 || rep.Malformed != 0 {
		t.Fatalf("lost %d, dup %d, out of order %d, malformed %d; want none", rep.Lost, rep.Duplicates, rep.OutOfOrder, rep.Malformed)
	}
	if rep.Latency.Max <= 0 || rep.Latency.P50 > rep.Latency.P99 || rep.Latency.P99 > rep.Latency.Max {
		t.Fatalf("latency %+v: want 0 < p50 <= p99 <= max", rep.Latency)
	}
	return rep
}

func TestRunEachTransport(t *testing.T) {
	batch := small(WebSocket)
	batch.WSSubprotocol = protocol.BatchSubprotocol
	cases := map[string]Options{
		"ws":       small(WebSocket),
		"ws-batch": batch,
		"sse":      small(SSE),
		"longpoll": small(LongPoll),
	}
	for name, o := range cases {
		t.Run(name, func(t *testing.T) {
			rep := runOK(t, o)
			if rep.Target != "in-process" || rep.MemSource == "" {
				t.Fatalf("target %q, memory source %q: want the in-process server measured", rep.Target, rep.MemSource)
			}
		})
	}
}

func TestRunPacedWithOnePublisher(t *testing.T) {
	o := small(SSE)
	o.Publishers = 1
	o.Rate = 1000
	o.Room = "paced"
	rep := runOK(t, o)
	if rep.Room != "paced" {
		t.Fatalf("room %q, want paced", rep.Room)
	}
}

// Subscribers that stop reading for a while still get everything.
func TestRunStalled(t *testing.T) {
	for _, tr := range []Transport{WebSocket, SSE, LongPoll} {
		t.Run(string(tr), func(t *testing.T) {
			o := small(tr)
			o.Stall = 2
			o.StallFor = 300 * time.Millisecond
			runOK(t, o)
		})
	}
}

// A subscriber whose connection drops mid-stream reconnects with its
// cursor and loses nothing, and gets nothing twice: a target that cuts
// connections in the middle of a frame, as many times as there are
// subscribers.
func TestRunReconnectsAfterDrops(t *testing.T) {
	for _, tr := range []Transport{WebSocket, SSE, LongPoll} {
		t.Run(string(tr), func(t *testing.T) {
			o := small(tr)
			o.Size = 2000 // every event is longer than the cut-off
			o.Targets = []string{startCuttingServer(t, 1024, int64(o.Subscribers))}
			if runtime.GOOS == "linux" {
				o.PID = os.Getpid()
			}
			rep := runOK(t, o)
			if rep.Reconnects == 0 {
				t.Fatalf("no reconnects, though the server cut %d connections", o.Subscribers)
			}
			if runtime.GOOS == "linux" && rep.MemSource == "" {
				t.Fatal("memory was not measured with --pid")
			}
		})
	}
}

// startCuttingServer starts pushd behind a handler that cuts event streams
// (and long-poll answers) in the middle of a write once they pass limit
// bytes, cuts times in all. It returns the server's URL.
func startCuttingServer(t *testing.T, limit int, cuts int64) string {
	t.Helper()
	return pushdtest.Start(t, server.Config{}, pushdtest.Wrap(func(h http.Handler) http.Handler {
		c := &cutter{h: h, limit: limit}
		c.budget.Store(cuts)
		return c
	})).URL
}

type cutter struct {
	h      http.Handler
	limit  int
	budget atomic.Int64
}

// take uses up one cut, if any are left.
func (c *cutter) take() bool { return c.budget.Add(-1) >= 0 }

var errCut = errors.New("cut by the test")

func (c *cutter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/events") || !r.URL.Query().Has("since") {
		c.h.ServeHTTP(w, r)
		return
	}
	c.h.ServeHTTP(&cutWriter{ResponseWriter: w, c: c}, r)
}

// cutWriter cuts an SSE stream or a long-poll answer; its Hijack hands out
// a connection that cuts WebSockets.
type cutWriter struct {
	http.ResponseWriter
	c    *cutter
	n    int
	done bool
}

func (w *cutWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, errCut
	}
	if w.n+len(p) > w.c.limit && w.c.take() {
		w.done = true
		half, _ := w.ResponseWriter.Write(p[:len(p)/2])
		return half, errCut
	}
	w.n += len(p)
	return w.ResponseWriter.Write(p)
}

func (w *cutWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *cutWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	cc := &cutConn{Conn: conn, c: w.c}
	return cc, bufio.NewReadWriter(brw.Reader, bufio.NewWriter(cc)), nil
}

type cutConn struct {
	net.Conn
	c    *cutter
	mu   sync.Mutex
	n    int
	done bool
}

func (cc *cutConn) Write(p []byte) (int, error) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.done {
		return 0, errCut
	}
	if cc.n+len(p) > cc.c.limit && cc.c.take() {
		cc.done = true
		half, _ := cc.Conn.Write(p[:len(p)/2])
		_ = cc.Conn.Close()
		return half, errCut
	}
	cc.n += len(p)
	return cc.Conn.Write(p)
}

// A server that loses one message and repeats another fails the check,
// and the report counts both for every subscriber.
func TestRunReportsLossAndDuplicates(t *testing.T) {
	o := small(LongPoll)
	o.Subscribers, o.Messages = 5, 20
	o.Drain = 300 * time.Millisecond
	o.Targets = []string{pushdtest.Start(t, server.Config{}, pushdtest.Wrap(func(h http.Handler) http.Handler { return &faultyPolls{h: h} })).URL}
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	n := int64(o.Subscribers)
	if rep.Lost != n || rep.Duplicates != n || rep.Deliveries != rep.Expected-n {
		t.Fatalf("lost %d, dup %d, deliveries %d of %d; want %d lost, %d dup", rep.Lost, rep.Duplicates, rep.Deliveries, rep.Expected, n, n)
	}
	err = rep.Check()
	if !errors.Is(err, ErrDelivery) || !strings.Contains(err.Error(), "5 of 100 deliveries lost") || !strings.Contains(err.Error(), "5 duplicate") {
		t.Fatalf("Check: %v; want lost and duplicate deliveries", err)
	}
}

// faultyPolls answers long polls with the message of publisher 0, sequence
// number 3, left out and that of publisher 1, sequence number 2, twice.
type faultyPolls struct{ h http.Handler }

func (f *faultyPolls) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/events") || !r.URL.Query().Has("since") {
		f.h.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, r)
	var poll struct {
		Events []json.RawMessage `json:"events"`
		Cursor string            `json:"cursor"`
	}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &poll) != nil {
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return
	}
	var kept []json.RawMessage
	for _, ev := range poll.Events {
		switch {
		case bytes.Contains(ev, []byte(":0:3:")):
		case bytes.Contains(ev, []byte(":1:2:")):
			kept = append(kept, ev, ev)
		default:
			kept = append(kept, ev)
		}
	}
	poll.Events = kept
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(poll)
}

func TestRunRefusedByTarget(t *testing.T) {
	o := small(WebSocket)
	o.Targets = []string{pushdtest.Start(t, server.Config{Limits: server.Limits{PublishRate: 1, PublishBurst: 1}}).URL}
	_, err := Run(context.Background(), o)
	var perr *protocol.Error
	if !errors.As(err, &perr) || perr.Code != protocol.CodeRateLimited || !strings.Contains(err.Error(), "--publish-rate 0") {
		t.Fatalf("Run against a rate-limited target: %v; want rate_limited with a hint", err)
	}
}

func TestRunRejectsOptions(t *testing.T) {
	cases := map[string]func(*Options){
		"transport":      func(o *Options) { o.Transport = "pigeon" },
		"subscribers":    func(o *Options) { o.Subscribers = 0 },
		"messages":       func(o *Options) { o.Messages = -1 },
		"publishers":     func(o *Options) { o.Publishers = 0 },
		"rate":           func(o *Options) { o.Rate = -1 },
		"size":           func(o *Options) { o.Size = 0 },
		"stall":          func(o *Options) { o.Stall = 2000 },
		"stall-for":      func(o *Options) { o.Stall, o.StallFor = 1, 0 },
		"room":           func(o *Options) { o.Room = "no spaces" },
		"target":         func(o *Options) { o.Targets = []string{"ftp://x"} },
		"pid":            func(o *Options) { o.PID = 1 },
		"publish-to":     func(o *Options) { o.PublishTo = "http://127.0.0.1:1" },
		"ws-subprotocol": func(o *Options) { o.WSSubprotocol = "chat" },
	}
	for option, change := range cases {
		t.Run(option, func(t *testing.T) {
			o := DefaultOptions()
			change(&o)
			_, err := Run(context.Background(), o)
			var oerr *OptionError
			if !errors.As(err, &oerr) || oerr.Option != option {
				t.Fatalf("Run: %v; want an OptionError about %s", err, option)
			}
		})
	}
}

// Runs against one server use one room, DefaultRoom, instead of leaving a
// room each in its store; each run reads only its own messages, though the
// room holds the earlier runs' too.
func TestRunsShareTheDefaultRoom(t *testing.T) {
	srv := pushdtest.Start(t, server.Config{})
	const runs = 2
	for range runs {
		o := small(WebSocket)
		o.Room = ""
		o.Targets = []string{srv.URL}
		if rep := runOK(t, o); rep.Room != DefaultRoom {
			t.Fatalf("room %q; want %q", rep.Room, DefaultRoom)
		}
	}
	messages := 0
	for _, ev := range srv.History(t, pushdtest.RoomPath(DefaultRoom)) {
		if ev.Type == protocol.TypeMessage {
			messages++
		}
	}
	if want := runs * small(WebSocket).Messages; messages != want {
		t.Errorf("room %s holds %d messages; want the %d of both runs", DefaultRoom, messages, want)
	}
}
