package pushdtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pushd/push/protocol"
)

// The ways to read a stream.
const (
	WS        = "ws"        // WebSocket, one event per message
	WSBatch   = "ws-batch"  // WebSocket with protocol.BatchSubprotocol
	SSE       = "sse"       // Server-Sent Events
	LongPoll  = "longpoll"  // long polls
	ShortPoll = "shortpoll" // short polls (wait=0) until something comes
)

// Transports are the ways a client reads a stream live.
var Transports = []string{WS, WSBatch, SSE, LongPoll}

// SubOptions say how to subscribe.
type SubOptions struct {
	Since       string // ?since=; "" for none
	LastEventID string // SSE: the Last-Event-ID header
	User        string // ?user=
	// Wait is a long poll's wait (default 5 s).
	Wait time.Duration
	// Name, when set, marks a poller's requests so that the server
	// counts them (Server.Entered).
	Name string
}

// Ended is how a subscription ended: "ws close 1012 server_shutdown",
// "sse close server_shutdown", "longpoll 503 unavailable", "longpoll
// final" (an answer with "final":true), or the connection's error.
type Ended struct{ How string }

func (e *Ended) Error() string { return "stream ended: " + e.How }

// RefusedError is a subscription the server refused.
type RefusedError struct {
	Transport string
	Status    int
	Body      []byte
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("%s refused: %d %s", e.Transport, e.Status, e.Body)
}

// Subscriber reads a stream over one transport, checking each event
// against the protocol. Its methods are for one goroutine at a time.
type Subscriber struct {
	s       *Remote
	kind    string
	path    string
	o       SubOptions
	ws      *websocket.Conn
	sse     *SSEConn
	pending []protocol.Event
	polls   atomic.Int64
	final   bool // a poll's answer said the stream ended
}

// Subscribe opens a subscription of the given kind to a stream's events
// path (see RoomPath). WebSocket and SSE subscriptions are open when it
// returns; polls are made as events are read. It is closed when the test
// ends.
func (s *Remote) Subscribe(t testing.TB, kind, path string, o SubOptions) *Subscriber {
	t.Helper()
	sub, err := s.TrySubscribe(kind, path, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	return sub
}

// TrySubscribe is Subscribe for any goroutine, and for a subscription the
// server may refuse (a *RefusedError): it returns the error, and the
// caller closes the subscriber.
func (s *Remote) TrySubscribe(kind, path string, o SubOptions) (*Subscriber, error) {
	if o.Wait == 0 {
		o.Wait = 5 * time.Second
	}
	sub := &Subscriber{s: s, kind: kind, path: path, o: o}
	q := url.Values{}
	if o.Since != "" {
		q.Set("since", o.Since)
	}
	if o.User != "" {
		q.Set("user", o.User)
	}
	target := path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	var err error
	switch kind {
	case WS, WSBatch:
		var protos []string
		if kind == WSBatch {
			protos = []string{protocol.BatchSubprotocol}
		}
		sub.ws, err = s.dialWS(target, s.Client, protos...)
	case SSE:
		var hdr []string
		if o.LastEventID != "" {
			hdr = []string{"Last-Event-ID", o.LastEventID}
		}
		if sub.sse, err = s.dialSSE(target, hdr...); err != nil {
			return nil, err
		}
		f, ferr := sub.sse.frame()
		if ferr == nil && (f.Retry != SSERetry || f.HasID || f.Event != "" || f.Data != "" || len(f.Comments) != 0) {
			ferr = fmt.Errorf("first SSE frame %+v; want retry: %s alone", f, SSERetry)
		}
		if ferr != nil {
			sub.sse.Close()
			return nil, ferr
		}
	case LongPoll, ShortPoll:
	default:
		return nil, fmt.Errorf("unknown transport %q", kind)
	}
	if err != nil {
		return nil, err
	}
	return sub, nil
}

// SSE returns an SSE subscriber's stream, for reading it frame by frame;
// nil for the other kinds.
func (sub *Subscriber) SSE() *SSEConn { return sub.sse }

// Kind returns how the subscriber reads.
func (sub *Subscriber) Kind() string { return sub.kind }

// Polls returns how many poll answers a polling subscriber has had.
func (sub *Subscriber) Polls() int { return int(sub.polls.Load()) }

// Cursor returns where a polling subscriber continues from.
func (sub *Subscriber) Cursor() string { return sub.o.Since }

// Next returns the next event, failing the test if none comes within
// Timeout or the stream ends.
func (sub *Subscriber) Next(t testing.TB) protocol.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	ev, err := sub.Read(ctx)
	if err != nil {
		t.Fatalf("%s %s: no next event: %v", sub.kind, sub.path, err)
	}
	return ev
}

// NextN returns the next n events.
func (sub *Subscriber) NextN(t testing.TB, n int) []protocol.Event {
	t.Helper()
	evs := make([]protocol.Event, 0, n)
	for range n {
		evs = append(evs, sub.Next(t))
	}
	return evs
}

// Read returns the next event, waiting until ctx ends. The end of the
// stream is an *Ended error; a refused poll a *RefusedError; an event
// that is not as the protocol says, another error.
func (sub *Subscriber) Read(ctx context.Context) (protocol.Event, error) {
	for len(sub.pending) == 0 {
		if err := sub.fill(ctx); err != nil {
			return protocol.Event{}, err
		}
	}
	ev := sub.pending[0]
	sub.pending = sub.pending[1:]
	return ev, nil
}

// fill reads what comes next into pending: one message or frame, or one
// poll's answer (which may be empty).
func (sub *Subscriber) fill(ctx context.Context) error {
	switch sub.kind {
	case WS, WSBatch:
		return sub.readWS(ctx)
	case SSE:
		return sub.readSSE(ctx)
	default:
		if sub.final {
			return &Ended{How: sub.kind + " final"}
		}
		return sub.poll(ctx)
	}
}

func (sub *Subscriber) readWS(ctx context.Context) error {
	typ, msg, err := sub.ws.Read(ctx)
	if err != nil {
		var ce websocket.CloseError
		if errors.As(err, &ce) {
			return &Ended{How: fmt.Sprintf("ws close %d %s", ce.Code, ce.Reason)}
		}
		return ended(ctx, "ws", err)
	}
	if typ != websocket.MessageText {
		return fmt.Errorf("WebSocket message of type %v; want text", typ)
	}
	if sub.kind == WS {
		if bytes.Contains(msg, []byte("\n")) {
			return fmt.Errorf("WebSocket message %q has a newline; without %s every message is one event", msg, protocol.BatchSubprotocol)
		}
		ev, err := checkEvent(msg)
		sub.pending = append(sub.pending, ev)
		return err
	}
	for line := range bytes.SplitSeq(msg, []byte("\n")) {
		ev, err := checkEvent(line)
		if err != nil {
			return err
		}
		sub.pending = append(sub.pending, ev)
	}
	return nil
}

func (sub *Subscriber) readSSE(ctx context.Context) error {
	stop := context.AfterFunc(ctx, sub.sse.cancel)
	defer stop()
	f, err := sub.sse.frame()
	if err != nil {
		return ended(ctx, "sse", err)
	}
	if len(f.Comments) > 0 && f.Event == "" && f.Data == "" {
		return nil // a heartbeat
	}
	if f.Event == "close" {
		var c struct{ Reason string }
		_ = json.Unmarshal([]byte(f.Data), &c)
		return &Ended{How: "sse close " + c.Reason}
	}
	ev, err := checkSSEEvent(f)
	if err != nil {
		return err
	}
	sub.pending = append(sub.pending, ev)
	return nil
}

// ended is the error of a read over kind that failed with err: ctx's
// error if ctx has ended, else the end of the stream.
func ended(ctx context.Context, kind string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return &Ended{How: kind + ": " + err.Error()}
}

// poll makes one poll: a long one, or for ShortPoll a short one after a
// moment's pause unless it is the first.
func (sub *Subscriber) poll(ctx context.Context) error {
	wait := sub.o.Wait
	if sub.kind == ShortPoll {
		if sub.polls.Load() > 0 {
			t := time.NewTimer(2 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		wait = 0
	}
	q := url.Values{"wait": {wait.String()}}
	if sub.o.Since != "" {
		q.Set("since", sub.o.Since)
	}
	if sub.o.User != "" {
		q.Set("user", sub.o.User)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, sub.s.URL+sub.path+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	if sub.o.Name != "" {
		req.Header.Set(watcherHeader, sub.o.Name)
	}
	a, err := sub.s.do(req)
	if err != nil {
		return ended(ctx, sub.kind, err)
	}
	if a.Status != http.StatusOK {
		var eb protocol.ErrorBody
		_ = json.Unmarshal(a.Body, &eb)
		return &Ended{How: fmt.Sprintf("%s %d %s", sub.kind, a.Status, eb.Error.Code)}
	}
	evs, cur, err := parsePoll(a)
	if err != nil {
		return err
	}
	sub.pending = append(sub.pending, evs...)
	sub.o.Since = cur
	sub.final = pollFinal(a)
	sub.polls.Add(1)
	return nil
}

// Close drops the connection without a goodbye.
func (sub *Subscriber) Close() {
	switch {
	case sub.ws != nil:
		_ = sub.ws.CloseNow()
	case sub.sse != nil:
		sub.sse.Close()
	}
}

// DialWS opens a WebSocket to path (with its query) over client (nil: the
// server's), asking for subprotocols, and checks the server took the batch
// subprotocol exactly when asked for it. It is closed when the test ends.
func (s *Remote) DialWS(t testing.TB, path string, client *http.Client, subprotocols ...string) *websocket.Conn {
	t.Helper()
	if client == nil {
		client = s.Client
	}
	c, err := s.dialWS(path, client, subprotocols...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

// ReadWS reads one message of a WebSocket, failing the test unless it is
// a text message that comes within Timeout.
func ReadWS(t testing.TB, c *websocket.Conn) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
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

func (s *Remote) dialWS(path string, client *http.Client, subprotocols ...string) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, s.WS+path, &websocket.DialOptions{HTTPClient: client, Subprotocols: subprotocols})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, &RefusedError{Transport: WS, Status: resp.StatusCode, Body: []byte(err.Error())}
		}
		return nil, fmt.Errorf("dial %s: %w", path, err)
	}
	c.SetReadLimit(64 << 20)
	want := ""
	if slices.Contains(subprotocols, protocol.BatchSubprotocol) {
		want = protocol.BatchSubprotocol
	}
	if got := c.Subprotocol(); got != want {
		_ = c.CloseNow()
		return nil, fmt.Errorf("subprotocol %q; want %q", got, want)
	}
	return c, nil
}
