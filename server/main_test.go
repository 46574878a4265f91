package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/pushd/push/internal/testlog"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// TestMain fails the package if any test leaves a goroutine behind: every
// server is shut down and every client connection closed by the tests'
// cleanups.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// readTimeout bounds every wait for something the server should send. It
// only turns a hang into a failure; nothing asserts on how long things take.
const readTimeout = 10 * time.Second

// pushd is a server under test, listening on 127.0.0.1.
type pushd struct {
	srv    *server.Server
	url    string       // http://127.0.0.1:port
	ws     string       // ws://127.0.0.1:port
	client *http.Client // for this server only; its idle connections are closed on cleanup
}

// startPushd starts a server with cfg on a random loopback port and
// registers its cleanup with t: Shutdown (which must succeed: every
// subscriber the test opened has gone by then), then the listener. The
// server's logs go to t.Log.
func startPushd(t testing.TB, cfg server.Config) *pushd {
	t.Helper()
	logs := testlog.New(t)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	p := &pushd{srv: srv, url: ts.URL, ws: "ws" + strings.TrimPrefix(ts.URL, "http"), client: &http.Client{Transport: tr}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		tr.CloseIdleConnections()
		ts.Close()
		logs.Stop()
	})
	return p
}

// goTB lets the helpers, which call Fatal, run on goroutines a test
// starts: Fatal reports with Errorf, which is safe from any goroutine, and
// ends only the calling goroutine (its deferred calls run).
type goTB struct{ testing.TB }

func (g goTB) Fatal(args ...any) {
	g.TB.Helper()
	g.TB.Error(args...)
	runtime.Goexit()
}

func (g goTB) Fatalf(format string, args ...any) {
	g.TB.Helper()
	g.TB.Errorf(format, args...)
	runtime.Goexit()
}

func (g goTB) FailNow() {
	g.TB.Fail()
	runtime.Goexit()
}

// ---- publishing and polling -------------------------------------------

// publish posts a message over HTTP and returns the stored event.
func (p *pushd) publish(t testing.TB, room, user, text string) protocol.Event {
	t.Helper()
	body, _ := json.Marshal(protocol.PublishRequest{User: user, Text: text})
	resp, err := p.client.Post(p.url+"/v1/rooms/"+room+"/messages", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("publish to %s: %d %s", room, resp.StatusCode, raw)
	}
	ev := checkEventJSON(t, raw)
	if ev.Type != protocol.TypeMessage || ev.User != user || ev.Text != text || ev.Stream != protocol.RoomStream(room) {
		t.Fatalf("publish answered %s; want the stored message of %s in %s", raw, user, room)
	}
	return ev
}

// publishDirect appends a message through the hub, for tests that need
// many events or large ones quickly.
func (p *pushd) publishDirect(t testing.TB, room, user, text string) protocol.Event {
	t.Helper()
	ev, err := p.srv.Hub().Publish(context.Background(), protocol.RoomStream(room), protocol.Event{Type: protocol.TypeMessage, User: user, Text: text})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// pollAnswer is a poll's answer with each event's JSON kept as sent.
type pollAnswer struct {
	Events []json.RawMessage `json:"events"`
	Cursor string            `json:"cursor"`
}

// get makes a GET request with optional header pairs and returns the
// status and body.
func (p *pushd) get(t testing.TB, ctx context.Context, path string, header ...string) (int, http.Header, []byte) {
	t.Helper()
	return p.request(t, ctx, http.MethodGet, path, "", "", header...)
}

// request makes a request with an optional body (ctype "" sends no
// Content-Type) and header pairs, and returns the answer.
func (p *pushd) request(t testing.TB, ctx context.Context, method, path, ctype, body string, header ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, p.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := p.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// poll makes a long or short poll on a room (query without the leading
// "?") and returns its events, checked, and cursor.
func (p *pushd) poll(t testing.TB, room, query string) ([]protocol.Event, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout+30*time.Second)
	defer cancel()
	status, hdr, body := p.get(t, ctx, "/v1/rooms/"+room+"/events?"+query)
	if status != http.StatusOK {
		t.Fatalf("poll %s?%s: %d %s", room, query, status, body)
	}
	if ct := hdr.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("poll answer Content-Type = %q; want application/json", ct)
	}
	var ans pollAnswer
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ans); err != nil || ans.Events == nil {
		t.Fatalf("poll answer %s: %v; want {\"events\":[...],\"cursor\":...}", body, err)
	}
	if _, err := protocol.ParseCursor(ans.Cursor); err != nil || !strings.Contains(ans.Cursor, ":") {
		t.Fatalf("poll answer cursor %q: want <epoch>:<seq> (%v)", ans.Cursor, err)
	}
	evs := make([]protocol.Event, len(ans.Events))
	for i, raw := range ans.Events {
		evs[i] = checkEventJSON(t, raw)
	}
	return evs, ans.Cursor
}

// head returns a room's current cursor (a short poll without since).
func (p *pushd) head(t testing.TB, room string) protocol.Cursor {
	t.Helper()
	evs, cur := p.poll(t, room, "wait=0")
	if len(evs) != 0 {
		t.Fatalf("short poll without since returned %d events; want none", len(evs))
	}
	c, _ := protocol.ParseCursor(cur)
	return c
}

// history returns every event a room holds (short polls from 0).
func (p *pushd) history(t testing.TB, room string) []protocol.Event {
	t.Helper()
	var all []protocol.Event
	since := "0"
	for {
		evs, cur := p.poll(t, room, "wait=0&since="+since)
		all = append(all, evs...)
		if len(evs) == 0 {
			return all
		}
		since = cur
	}
}

// gauge returns pushd_connections for a transport from /metrics.
func (p *pushd) gauge(t testing.TB, transport string) (int, error) {
	t.Helper()
	_, _, body := p.get(t, context.Background(), "/metrics")
	m := regexp.MustCompile(`(?m)^pushd_connections\{transport="` + transport + `"\} (\d+)$`).FindSubmatch(body)
	if m == nil {
		return 0, fmt.Errorf("/metrics has no pushd_connections for %s", transport)
	}
	return strconv.Atoi(string(m[1]))
}

// waitGauge waits until pushd_connections{transport} is n.
func (p *pushd) waitGauge(t testing.TB, transport string, n int) {
	t.Helper()
	testwait.Until(t, readTimeout, 5*time.Millisecond, func() error {
		got, err := p.gauge(t, transport)
		if err != nil {
			return err
		}
		if got != n {
			return fmt.Errorf("%d %s connections; want %d", got, transport, n)
		}
		return nil
	})
}

// presence returns the users present in a room.
func (p *pushd) presence(t testing.TB, room string) []string {
	t.Helper()
	status, _, body := p.get(t, context.Background(), "/v1/rooms/"+room+"/presence")
	if status != http.StatusOK {
		t.Fatalf("presence: %d %s", status, body)
	}
	var pr struct {
		Users []string `json:"users"`
	}
	if err := json.Unmarshal(body, &pr); err != nil || pr.Users == nil {
		t.Fatalf("presence answer %s: want {\"users\":[...]} (%v)", body, err)
	}
	return pr.Users
}

// ---- event checks -----------------------------------------------------

// eventFields lists the JSON fields each event type must have, and no others.
var eventFields = map[protocol.Type][]string{
	protocol.TypeMessage:  {"epoch", "seq", "stream", "text", "time", "type", "user"},
	protocol.TypeLogin:    {"epoch", "seq", "stream", "time", "type", "user"},
	protocol.TypeLogout:   {"epoch", "seq", "stream", "time", "type", "user"},
	protocol.TypeReset:    {"epoch", "reason", "seq", "stream", "time", "type"},
	protocol.TypeProgress: {"epoch", "seq", "stream", "task", "time", "type"},
}

var epochRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// checkEventJSON checks one event's JSON against the protocol (the fields
// of its type and no others, an epoch, the time in RFC 3339 UTC) and
// returns it decoded.
func checkEventJSON(t testing.TB, raw []byte) protocol.Event {
	t.Helper()
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatalf("event %q is not a JSON object: %v", raw, err)
	}
	var ev protocol.Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatalf("event %s: %v", raw, err)
	}
	want, ok := eventFields[ev.Type]
	if !ok {
		t.Fatalf("event %s: unknown type %q", raw, ev.Type)
	}
	got := slices.Sorted(func(yield func(string) bool) {
		for k := range fields {
			if !yield(k) {
				return
			}
		}
	})
	if !slices.Equal(got, want) {
		t.Fatalf("event %s has fields %v; a %s event has exactly %v", raw, got, ev.Type, want)
	}
	if !epochRE.MatchString(ev.Epoch) {
		t.Fatalf("event %s: epoch %q is not 1 to 64 of [A-Za-z0-9._-]", raw, ev.Epoch)
	}
	var ts string
	_ = json.Unmarshal(fields["time"], &ts)
	if parsed, err := time.Parse(time.RFC3339Nano, ts); err != nil || !strings.HasSuffix(ts, "Z") || parsed.IsZero() {
		t.Fatalf("event %s: time %q is not RFC 3339 in UTC", raw, ts)
	}
	return ev
}

// checkMessages checks that evs are exactly the messages with seqs from
// first on, in one epoch, with the given texts.
func checkMessages(t testing.TB, evs []protocol.Event, epoch string, first uint64, texts []string) {
	t.Helper()
	if len(evs) != len(texts) {
		t.Fatalf("got %d events %s; want %d messages from seq %d", len(evs), summary(evs), len(texts), first)
	}
	for i, ev := range evs {
		if ev.Type != protocol.TypeMessage || ev.Epoch != epoch || ev.Seq != first+uint64(i) || ev.Text != texts[i] {
			t.Fatalf("event %d is %s; want message %q at %s:%d\nall: %s", i, oneLine(ev), texts[i], epoch, first+uint64(i), summary(evs))
		}
	}
}

func oneLine(ev protocol.Event) string {
	s := fmt.Sprintf("%s %s:%d", ev.Type, ev.Epoch, ev.Seq)
	if ev.User != "" {
		s += " " + ev.User
	}
	if ev.Reason != "" {
		s += " (" + ev.Reason + ")"
	}
	if ev.Text != "" {
		s += " " + strconv.Quote(clip(ev.Text))
	}
	return s
}

func summary(evs []protocol.Event) string {
	parts := make([]string, len(evs))
	for i, ev := range evs {
		parts[i] = oneLine(ev)
	}
	if len(parts) > 20 {
		parts = append(parts[:10], append([]string{"..."}, parts[len(parts)-10:]...)...)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func clip(s string) string {
	if len(s) > 20 {
		return s[:20] + "..."
	}
	return s
}

// texts returns n message texts with a prefix: "prefix-1", "prefix-2", ...
func texts(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + "-" + strconv.Itoa(i+1)
	}
	return out
}

// ---- subscribers over each transport ----------------------------------

// Transport kinds of the table-driven tests.
const (
	kindWS       = "ws"
	kindWSBatch  = "ws-batch"
	kindSSE      = "sse"
	kindLongPoll = "longpoll"
	kindShort    = "shortpoll"
)

var streamingKinds = []string{kindWS, kindWSBatch, kindSSE, kindLongPoll}

// subOpts says how to subscribe.
type subOpts struct {
	since       string // ?since=; "" for none
	lastEventID string // SSE: Last-Event-ID header
	user        string // ?user=
}

// subscriber receives a room's events over one transport.
type subscriber interface {
	// next returns the next event, its JSON checked; it fails the test if
	// none comes within readTimeout.
	next(t testing.TB) protocol.Event
	// close drops the connection without a goodbye.
	close()
}

// nextN reads n events.
func nextN(t testing.TB, s subscriber, n int) []protocol.Event {
	t.Helper()
	evs := make([]protocol.Event, 0, n)
	for range n {
		evs = append(evs, s.next(t))
	}
	return evs
}

// subscribe opens a subscription of the given kind to a room. WebSocket and
// SSE subscriptions exist when subscribe returns; long polls are made by
// next.
func (p *pushd) subscribe(t testing.TB, kind, room string, o subOpts) subscriber {
	t.Helper()
	q := url.Values{}
	if o.since != "" {
		q.Set("since", o.since)
	}
	if o.user != "" {
		q.Set("user", o.user)
	}
	path := "/v1/rooms/" + room + "/events"
	switch kind {
	case kindWS, kindWSBatch:
		var protos []string
		if kind == kindWSBatch {
			protos = []string{protocol.BatchSubprotocol}
		}
		c := p.dialWS(t, path+"?"+q.Encode(), protos...)
		return &wsSub{c: c, batch: kind == kindWSBatch}
	case kindSSE:
		var hdr []string
		if o.lastEventID != "" {
			hdr = []string{"Last-Event-ID", o.lastEventID}
		}
		s := p.dialSSE(t, path+"?"+q.Encode(), hdr...)
		if f := s.frame(t); f.retry != "2000" || f.hasID || f.event != "" || f.data != "" {
			t.Fatalf("first SSE frame %+v; want retry: 2000 alone", f)
		}
		return s
	case kindLongPoll, kindShort:
		return &pollSub{p: p, room: room, since: o.since, user: o.user, short: kind == kindShort}
	}
	t.Fatalf("unknown transport %q", kind)
	return nil
}

// wsSub reads events from a WebSocket.
type wsSub struct {
	c       *websocket.Conn
	batch   bool
	pending []protocol.Event
}

// dialWS opens a WebSocket, closed on cleanup.
func (p *pushd) dialWS(t testing.TB, path string, subprotocols ...string) *websocket.Conn {
	t.Helper()
	return p.dialWSWith(t, path, p.client, subprotocols...)
}

func (p *pushd) dialWSWith(t testing.TB, path string, client *http.Client, subprotocols ...string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, p.ws+path, &websocket.DialOptions{HTTPClient: client, Subprotocols: subprotocols})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", path, err, status)
	}
	c.SetReadLimit(64 << 20)
	t.Cleanup(func() { _ = c.CloseNow() })
	want := ""
	if slices.Contains(subprotocols, protocol.BatchSubprotocol) {
		want = protocol.BatchSubprotocol
	}
	if got := c.Subprotocol(); got != want {
		t.Fatalf("subprotocol %q; want %q", got, want)
	}
	return c
}

// readWS reads one message.
func readWS(t testing.TB, c *websocket.Conn) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	typ, msg, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read WebSocket: %v", err)
	}
	if typ != websocket.MessageText {
		t.Fatalf("WebSocket message of type %v; want text", typ)
	}
	return msg
}

func (s *wsSub) next(t testing.TB) protocol.Event {
	t.Helper()
	for len(s.pending) == 0 {
		msg := readWS(t, s.c)
		if !s.batch {
			if bytes.Contains(msg, []byte("\n")) {
				t.Fatalf("WebSocket message %q has a newline; without %s every message is one event", msg, protocol.BatchSubprotocol)
			}
			return checkEventJSON(t, msg)
		}
		for line := range bytes.SplitSeq(msg, []byte("\n")) {
			s.pending = append(s.pending, checkEventJSON(t, line))
		}
	}
	ev := s.pending[0]
	s.pending = s.pending[1:]
	return ev
}

func (s *wsSub) close() { _ = s.c.CloseNow() }

// sseSub reads Server-Sent Events from a response body.
type sseSub struct {
	resp   *http.Response
	br     *bufio.Reader
	cancel context.CancelFunc
}

// sseFrame is one frame of an event stream.
type sseFrame struct {
	id, event, data, retry string
	hasID                  bool
	comments               []string
}

// dialSSE makes an event-stream request and checks its answer's headers.
func (p *pushd) dialSSE(t testing.TB, path string, header ...string) *sseSub {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	timer := time.AfterFunc(readTimeout, cancel)
	resp, err := p.client.Do(req)
	timer.Stop()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	s := &sseSub{resp: resp, br: bufio.NewReader(resp.Body), cancel: cancel}
	t.Cleanup(s.close)
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("SSE %s: %d %s", path, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("SSE Content-Type = %q; want text/event-stream", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Fatalf("SSE Cache-Control = %q; want no-cache", cc)
	}
	return s
}

// frame reads the next frame, failing the test if none comes in time.
func (s *sseSub) frame(t testing.TB) sseFrame {
	t.Helper()
	timer := time.AfterFunc(readTimeout, s.cancel)
	defer timer.Stop()
	f, err := readFrame(s.br)
	if err != nil {
		t.Fatalf("read SSE frame: %v", err)
	}
	return f
}

// readFrame parses one event-stream frame: lines up to a blank line.
func readFrame(br *bufio.Reader) (sseFrame, error) {
	var f sseFrame
	lines := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return f, fmt.Errorf("after %d lines of a frame: %w", lines, err)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if lines == 0 {
				return f, fmt.Errorf("an empty frame (a blank line alone)")
			}
			return f, nil
		}
		lines++
		if c, ok := strings.CutPrefix(line, ":"); ok {
			f.comments = append(f.comments, strings.TrimPrefix(c, " "))
			continue
		}
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "id":
			f.id, f.hasID = value, true
		case "event":
			f.event = value
		case "data":
			if f.data != "" {
				return f, fmt.Errorf("a frame with two data lines; the protocol has one")
			}
			f.data = value
		case "retry":
			f.retry = value
		default:
			return f, fmt.Errorf("unknown field in line %q", line)
		}
	}
}

func (s *sseSub) next(t testing.TB) protocol.Event {
	t.Helper()
	for {
		f := s.frame(t)
		if len(f.comments) > 0 && f.event == "" && f.data == "" {
			continue // a heartbeat
		}
		return checkSSEEvent(t, f)
	}
}

// checkSSEEvent checks an event frame: id <epoch>:<seq>, event <type>,
// data the event's JSON on one line.
func checkSSEEvent(t testing.TB, f sseFrame) protocol.Event {
	t.Helper()
	if f.event == "close" {
		t.Fatalf("SSE stream closed by the server: %s", f.data)
	}
	ev := checkEventJSON(t, []byte(f.data))
	if !f.hasID || f.id != ev.Cursor().String() || f.event != string(ev.Type) {
		t.Fatalf("SSE frame id %q event %q for %s; want id %s and event %s", f.id, f.event, f.data, ev.Cursor(), ev.Type)
	}
	return ev
}

func (s *sseSub) close() {
	s.cancel()
	_ = s.resp.Body.Close()
}

// pollSub long-polls (or short-polls) from a cursor.
type pollSub struct {
	p       *pushd
	room    string
	since   string
	user    string
	short   bool
	pending []protocol.Event
}

func (s *pollSub) next(t testing.TB) protocol.Event {
	t.Helper()
	if s.short {
		testwait.Until(t, readTimeout, 2*time.Millisecond, func() error {
			s.fetch(t, "0")
			if len(s.pending) == 0 {
				return fmt.Errorf("no event after %s", s.since)
			}
			return nil
		})
	}
	deadline := time.Now().Add(readTimeout)
	for len(s.pending) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no event after %s within %v", s.since, readTimeout)
		}
		s.fetch(t, "5s")
	}
	ev := s.pending[0]
	s.pending = s.pending[1:]
	return ev
}

func (s *pollSub) fetch(t testing.TB, wait string) {
	t.Helper()
	q := url.Values{"wait": {wait}}
	if s.since != "" {
		q.Set("since", s.since)
	}
	if s.user != "" {
		q.Set("user", s.user)
	}
	evs, cur := s.p.poll(t, s.room, q.Encode())
	s.pending = append(s.pending, evs...)
	s.since = cur
}

func (s *pollSub) close() {}

// ---- raw TCP clients --------------------------------------------------

// smallBufferDialer dials with a small receive buffer, so that a client
// that stops reading makes the server's writes block soon.
var smallBufferDialer = &net.Dialer{
	Timeout: readTimeout,
	Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	},
}

// rawSSE sends an event-stream request by hand on a connection with a small
// receive buffer and reads nothing: the caller decides when to read. It
// returns the connection, closed on cleanup.
func (p *pushd) rawSSE(t testing.TB, path string, header ...string) net.Conn {
	t.Helper()
	addr := strings.TrimPrefix(p.url, "http://")
	c, err := smallBufferDialer.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nAccept: text/event-stream\r\n"
	for i := 0; i+1 < len(header); i += 2 {
		req += header[i] + ": " + header[i+1] + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	return c
}

// readRawSSE reads the answer to rawSSE's request: its status line and
// headers, then the frames.
func readRawSSE(t testing.TB, c net.Conn) (*http.Response, *bufio.Reader) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(readTimeout))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read SSE answer: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("SSE answer %d", resp.StatusCode)
	}
	return resp, bufio.NewReader(resp.Body)
}

// smallBufferClient is an HTTP client (for WebSockets) whose connections
// have a small receive buffer.
func smallBufferClient(t testing.TB) *http.Client {
	tr := &http.Transport{DialContext: smallBufferDialer.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}
