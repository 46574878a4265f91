package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/coder/websocket"

	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server/tasks/tasktest"
)

// Watchers of the tasks stream, or of one task's events, over each
// transport, for the task tests.

// taskTransports are the three ways to watch a stream.
var taskTransports = []string{"ws", "sse", "longpoll"}

// taskWatcher follows a stream over one transport and keeps what it sees.
type taskWatcher struct {
	ts        *taskServer
	name      string
	transport string
	cancel    context.CancelFunc
	done      chan struct{}

	mu     sync.Mutex
	events []protocol.Event
	polls  int    // long polling: answers received
	ended  bool   // the stream ended, or a poll was refused
	end    string // how: "ws close 1012 server_shutdown", "sse close server_shutdown", "longpoll 503 unavailable", ...
}

var taskWatchers atomic.Int64

// watch follows path (a stream URL with its query, such as
// "/v1/tasks/{id}/events?since=0") over transport. A WebSocket or SSE
// watcher is subscribed when watch returns; a long-polling one polls
// continually. Cleanup stops it.
func (ts *taskServer) watch(transport, path string) *taskWatcher {
	t := ts.t
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &taskWatcher{ts: ts, transport: transport, cancel: cancel, done: make(chan struct{}),
		name: fmt.Sprintf("%s-%d", transport, taskWatchers.Add(1))}
	switch transport {
	case "ws":
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.url, "http")+path, nil)
		if err != nil {
			cancel()
			t.Fatalf("websocket %s: %v", path, err)
		}
		go w.readWS(ctx, c)
	case "sse":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.url+path, nil)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		req.Header.Set("Accept", "text/event-stream")
		resp, err := ts.client.Do(req)
		if err != nil {
			cancel()
			t.Fatalf("sse %s: %v", path, err)
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			cancel()
			t.Fatalf("sse %s: %d %s %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
		go w.readSSE(resp.Body)
	case "longpoll":
		go w.poll(ctx, path)
	default:
		cancel()
		t.Fatalf("unknown transport %q", transport)
	}
	t.Cleanup(w.stop)
	return w
}

// stop ends the watcher and waits for its goroutine.
func (w *taskWatcher) stop() {
	w.cancel()
	<-w.done
}

func (w *taskWatcher) add(evs ...protocol.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.events = append(w.events, evs...)
}

func (w *taskWatcher) finish(end string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.ended {
		w.ended, w.end = true, end
	}
}

func (w *taskWatcher) readWS(ctx context.Context, c *websocket.Conn) {
	defer close(w.done)
	defer c.CloseNow()
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				w.finish(fmt.Sprintf("ws close %d %s", ce.Code, ce.Reason))
			} else {
				w.finish("ws: " + err.Error())
			}
			return
		}
		var ev protocol.Event
		if err := json.Unmarshal(data, &ev); err != nil {
			w.finish(fmt.Sprintf("ws: message %q is not an event: %v", data, err))
			return
		}
		w.add(ev)
	}
}

func (w *taskWatcher) readSSE(body io.ReadCloser) {
	defer close(w.done)
	defer body.Close()
	br := bufio.NewReader(body)
	var id, event, data string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			w.finish("sse: " + err.Error())
			return
		}
		line = strings.TrimSuffix(line, "\n")
		field, value, _ := strings.Cut(line, ": ")
		switch {
		case line == "":
			if data == "" {
				break // retry: or a comment
			}
			if event == "close" {
				var c struct{ Reason string }
				_ = json.Unmarshal([]byte(data), &c)
				w.finish("sse close " + c.Reason)
				return
			}
			var ev protocol.Event
			if err := json.Unmarshal([]byte(data), &ev); err != nil {
				w.finish(fmt.Sprintf("sse: data %q is not an event: %v", data, err))
				return
			}
			if id != ev.Cursor().String() || event != string(ev.Type) {
				w.finish(fmt.Sprintf("sse: frame id %q event %q for event %s of type %s", id, event, ev.Cursor(), ev.Type))
				return
			}
			w.add(ev)
			id, event, data = "", "", ""
		case strings.HasPrefix(line, ":"), field == "retry":
		case field == "id":
			id = value
		case field == "event":
			event = value
		case field == "data":
			data = value
		default:
			w.finish(fmt.Sprintf("sse: unexpected line %q", line))
			return
		}
	}
}

// poll long-polls path, passing each answer's cursor to the next poll,
// until a poll fails or is refused, or an answer says the stream ended.
func (w *taskWatcher) poll(ctx context.Context, path string) {
	defer close(w.done)
	u, err := url.Parse(w.ts.url + path)
	if err != nil {
		w.finish(err.Error())
		return
	}
	q := u.Query()
	q.Set("wait", "10s")
	for {
		u.RawQuery = q.Encode()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			w.finish(err.Error())
			return
		}
		req.Header.Set(taskWatcherHeader, w.name)
		resp, err := w.ts.client.Do(req)
		if err != nil {
			w.finish("longpoll: " + err.Error())
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			w.finish("longpoll: " + err.Error())
			return
		}
		if resp.StatusCode != http.StatusOK {
			var eb protocol.ErrorBody
			_ = json.Unmarshal(b, &eb)
			w.finish(fmt.Sprintf("longpoll %d %s", resp.StatusCode, eb.Error.Code))
			return
		}
		var p protocol.Poll
		if err := json.Unmarshal(b, &p); err != nil || p.Cursor == "" {
			w.finish(fmt.Sprintf("longpoll: answer %q: %v", b, err))
			return
		}
		w.mu.Lock()
		w.events = append(w.events, p.Events...)
		w.polls++
		w.mu.Unlock()
		if p.Final {
			w.finish("longpoll final")
			return
		}
		q.Set("since", p.Cursor)
	}
}

// seen returns a copy of the events so far, whether the stream ended, and how.
func (w *taskWatcher) seen() ([]protocol.Event, bool, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]protocol.Event(nil), w.events...), w.ended, w.end
}

// waitFor waits until cond holds for the events seen so far and returns
// them. It fails the test if the stream ends first.
func (w *taskWatcher) waitFor(what string, cond func([]protocol.Event) bool) []protocol.Event {
	t := w.ts.t
	t.Helper()
	var evs []protocol.Event
	var ended bool
	var end string
	testwait.Until(t, taskWait, taskPollEvery, func() error {
		if evs, ended, end = w.seen(); cond(evs) || ended {
			return nil
		}
		return fmt.Errorf("%s watcher: no %s; it saw %s", w.name, what, tasktest.EventsString(evs))
	})
	if !cond(evs) {
		t.Fatalf("%s watcher: no %s (ended: %v %s); it saw %s", w.name, what, ended, end, tasktest.EventsString(evs))
	}
	return evs
}

// waitFinal waits for a final state of task id and returns that state.
func (w *taskWatcher) waitFinal(id string) protocol.Task {
	w.ts.t.Helper()
	evs := w.waitFor("final state of "+id, func(evs []protocol.Event) bool { return tasktest.Final(evs, id) != nil })
	return *tasktest.Final(evs, id)
}

// waitEnded waits for the stream to end and returns how it ended and what
// was seen before.
func (w *taskWatcher) waitEnded() ([]protocol.Event, string) {
	t := w.ts.t
	t.Helper()
	var evs []protocol.Event
	var end string
	testwait.Until(t, taskWait, taskPollEvery, func() error {
		var ended bool
		if evs, ended, end = w.seen(); ended {
			return nil
		}
		return fmt.Errorf("%s watcher: the stream did not end; it saw %s", w.name, tasktest.EventsString(evs))
	})
	return evs, end
}

// waitInFlight waits until cond holds for the events seen and the watcher
// is subscribed: a WebSocket or SSE stream is open, or a long poll made
// after those events has reached the server.
func (w *taskWatcher) waitInFlight(what string, cond func([]protocol.Event) bool) {
	t := w.ts.t
	t.Helper()
	testwait.Until(t, taskWait, taskPollEvery, func() error {
		w.mu.Lock()
		evs := append([]protocol.Event(nil), w.events...)
		polls, ended := w.polls, w.ended
		w.mu.Unlock()
		notYet := fmt.Errorf("%s watcher: no %s while subscribed; it saw %s", w.name, what, tasktest.EventsString(evs))
		if ended || !cond(evs) {
			return notYet
		}
		if w.transport != "longpoll" {
			return nil
		}
		w.ts.mu.Lock()
		defer w.ts.mu.Unlock()
		if w.ts.entered[w.name] <= polls {
			return notYet
		}
		return nil
	})
}
