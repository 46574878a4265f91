package pushdtest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pushd/push/protocol"
)

// SSERetry is the retry field that opens every event stream.
const SSERetry = "2000"

// SSEFrame is one frame of an event stream as pushd writes it.
type SSEFrame struct {
	ID, Event, Data, Retry string
	HasID                  bool
	Comments               []string
}

// SSEConn is an open event stream.
type SSEConn struct {
	Resp   *http.Response
	br     *bufio.Reader
	cancel context.CancelFunc
}

// DialSSE makes an event-stream request to path (with its query) and
// header (name, value pairs), checks the answer is a stream with the
// headers the protocol gives it, and returns it; it is closed when the
// test ends.
func (s *Remote) DialSSE(t testing.TB, path string, header ...string) *SSEConn {
	t.Helper()
	c, err := s.dialSSE(path, header...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// dialSSE is DialSSE for any goroutine; the caller closes the stream.
func (s *Remote) dialSSE(path string, header ...string) (*SSEConn, error) {
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+path, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	timer := time.AfterFunc(Timeout, cancel)
	resp, err := s.Client.Do(req)
	timer.Stop()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("SSE %s: %w", path, err)
	}
	c := &SSEConn{Resp: resp, br: bufio.NewReader(resp.Body), cancel: cancel}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		c.Close()
		return nil, &RefusedError{Transport: SSE, Status: resp.StatusCode, Body: body}
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		c.Close()
		return nil, fmt.Errorf("SSE %s: Content-Type %q; want text/event-stream", path, ct)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
		c.Close()
		return nil, fmt.Errorf("SSE %s: Cache-Control %q; want no-cache", path, cc)
	}
	return c, nil
}

// Frame reads the next frame, failing the test if none comes within
// Timeout or it is not as pushd writes frames.
func (c *SSEConn) Frame(t testing.TB) SSEFrame {
	t.Helper()
	f, err := c.frame()
	if err != nil {
		t.Fatalf("read SSE frame: %v", err)
	}
	return f
}

// frame is Frame for any goroutine.
func (c *SSEConn) frame() (SSEFrame, error) {
	timer := time.AfterFunc(Timeout, c.cancel)
	defer timer.Stop()
	return ReadSSEFrame(c.br)
}

// Close ends the stream.
func (c *SSEConn) Close() {
	c.cancel()
	_ = c.Resp.Body.Close()
}

// ReadSSEFrame reads one event-stream frame, lines up to a blank line,
// and checks it is as pushd writes frames: lines end in "\n", at most one
// data line, no fields but id, event, data and retry.
func ReadSSEFrame(br *bufio.Reader) (SSEFrame, error) {
	var f SSEFrame
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
			f.Comments = append(f.Comments, strings.TrimPrefix(c, " "))
			continue
		}
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "id":
			f.ID, f.HasID = value, true
		case "event":
			f.Event = value
		case "data":
			if f.Data != "" {
				return f, fmt.Errorf("a frame with two data lines; the protocol has one")
			}
			f.Data = value
		case "retry":
			f.Retry = value
		default:
			return f, fmt.Errorf("unknown field in line %q", line)
		}
	}
}

// CheckSSEEvent checks an event frame (id <epoch>:<seq>, event <type>,
// data the event's JSON on one line, checked as CheckEvent does) and
// returns the event.
func CheckSSEEvent(t testing.TB, f SSEFrame) protocol.Event {
	t.Helper()
	ev, err := checkSSEEvent(f)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// checkSSEEvent is CheckSSEEvent for any goroutine.
func checkSSEEvent(f SSEFrame) (protocol.Event, error) {
	if f.Event == "close" {
		return protocol.Event{}, fmt.Errorf("SSE stream closed by the server: %s", f.Data)
	}
	ev, err := checkEvent([]byte(f.Data))
	if err != nil {
		return ev, err
	}
	if !f.HasID || f.ID != ev.Cursor().String() || f.Event != string(ev.Type) {
		return ev, fmt.Errorf("SSE frame id %q event %q for %s; want id %s and event %s", f.ID, f.Event, f.Data, ev.Cursor(), ev.Type)
	}
	return ev, nil
}
