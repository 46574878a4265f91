package pushdtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
)

// Answer is a server's answer to one request.
type Answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the answer's body into v, failing the test if it is not
// JSON of that shape.
func (a Answer) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(a.Body, v); err != nil {
		t.Fatalf("answer %d %s: %v", a.Status, a.Body, err)
	}
}

// Error returns the answer's error body, failing the test if it has none.
func (a Answer) Error(t testing.TB) protocol.ErrorDetail {
	t.Helper()
	var eb protocol.ErrorBody
	if err := json.Unmarshal(a.Body, &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
		t.Fatalf("answer %d %s: not an error body with a code and a message (%v)", a.Status, a.Body, err)
	}
	return eb.Error
}

// Code returns the answer's error code, "" for a success (a status below
// 400), failing the test if an error has no error body.
func (a Answer) Code(t testing.TB) string {
	t.Helper()
	if a.Status < 400 {
		return ""
	}
	return a.Error(t).Code
}

// WantError fails the test unless the answer is an error of status with
// code, in the protocol's error body: JSON, exactly
// {"error":{"code":...,"message":...}}, with a message. It returns the
// error.
func (a Answer) WantError(t testing.TB, status int, code string) protocol.ErrorDetail {
	t.Helper()
	if a.Status != status {
		t.Fatalf("answer %d %s; want %d %s", a.Status, a.Body, status, code)
	}
	if ct := a.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error answer Content-Type %q; want application/json", ct)
	}
	var eb protocol.ErrorBody
	dec := json.NewDecoder(bytes.NewReader(a.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&eb); err != nil {
		t.Fatalf("error body %s: %v", a.Body, err)
	}
	if eb.Error.Code != code || eb.Error.Message == "" {
		t.Fatalf("error body %s; want code %s and a message", a.Body, code)
	}
	return eb.Error
}

// Request sends a request to path (with its query) and returns the answer.
// A body that is not empty is sent as application/json unless header
// (name, value pairs) sets another Content-Type; an empty value removes a
// header. The request is bounded by ctx and Timeout beyond any wait it
// asks for.
func (s *Remote) Request(t testing.TB, ctx context.Context, method, path, body string, header ...string) Answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, Timeout+time.Minute)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	a, err := s.do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return a
}

// do sends req and reads the whole answer.
func (s *Remote) do(req *http.Request) (Answer, error) {
	resp, err := s.Client.Do(req)
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return Answer{}, fmt.Errorf("read the answer: %w", err)
	}
	return Answer{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// Get is a GET of path.
func (s *Remote) Get(t testing.TB, path string, header ...string) Answer {
	t.Helper()
	return s.Request(t, context.Background(), http.MethodGet, path, "", header...)
}

// Post is a POST of a JSON body to path.
func (s *Remote) Post(t testing.TB, path, body string, header ...string) Answer {
	t.Helper()
	return s.Request(t, context.Background(), http.MethodPost, path, body, header...)
}

// Expect sends a request, fails the test unless the answer has status
// want, and decodes its body into out unless out is nil.
func (s *Remote) Expect(t testing.TB, method, path, body string, want int, out any) Answer {
	t.Helper()
	a := s.Request(t, context.Background(), method, path, body)
	if a.Status != want {
		t.Fatalf("%s %s %s: %d %s; want %d", method, path, body, a.Status, a.Body, want)
	}
	if out != nil {
		a.JSON(t, out)
	}
	return a
}

// Publish posts a message to room as user and returns the stored event,
// failing the test unless it was stored (201) as sent.
func (s *Remote) Publish(t testing.TB, room, user, text string) protocol.Event {
	t.Helper()
	body, err := json.Marshal(protocol.PublishRequest{User: user, Text: text})
	if err != nil {
		t.Fatal(err)
	}
	a := s.Post(t, "/v1/rooms/"+room+"/messages", string(body))
	if a.Status != http.StatusCreated {
		t.Fatalf("publish to %s: %d %s", room, a.Status, a.Body)
	}
	ev := CheckEvent(t, a.Body)
	if ev.Type != protocol.TypeMessage || ev.User != user || ev.Text != text || ev.Stream != protocol.RoomStream(room) {
		t.Fatalf("publish answered %s; want the stored message of %s in %s", a.Body, user, room)
	}
	return ev
}

// PublishDirect appends a message to room through the hub, not over
// HTTP, for tests that need many events or large ones quickly.
func (s *Server) PublishDirect(t testing.TB, room, user, text string) protocol.Event {
	t.Helper()
	ev, err := s.Srv().Hub().Publish(context.Background(), protocol.RoomStream(room), protocol.Event{Type: protocol.TypeMessage, User: user, Text: text})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// Poll makes a long or short poll of a stream's events path (such as
// "/v1/rooms/lobby/events", or "/v1/tasks/events") with query (no
// leading "?"), and returns its events, each checked against the
// protocol, and its cursor.
func (s *Remote) Poll(t testing.TB, path, query string) ([]protocol.Event, string) {
	t.Helper()
	evs, cur, _ := s.PollFinal(t, path, query)
	return evs, cur
}

// Polled is a poll's answer: its events and cursor.
type Polled struct {
	Events []protocol.Event
	Cursor string
}

// PollAsync makes a poll (as Poll does) on a goroutine of its own, for a
// long poll the test answers meanwhile. Its answer comes on the channel,
// which is closed after it, or without it if the poll failed the test.
func (s *Remote) PollAsync(t testing.TB, path, query string) <-chan Polled {
	ch := make(chan Polled, 1)
	go func() {
		defer close(ch)
		evs, cur := s.Poll(GoTB{TB: t}, path, query)
		ch <- Polled{Events: evs, Cursor: cur}
	}()
	return ch
}

// parsePoll checks a poll's answer (JSON with exactly events and cursor,
// and final on the answer that ends a stream; each event as the protocol
// says, the cursor <epoch>:<seq>) and returns its events and cursor.
func parsePoll(a Answer) ([]protocol.Event, string, error) {
	if ct := a.Header.Get("Content-Type"); ct != "application/json" {
		return nil, "", fmt.Errorf("poll answer Content-Type = %q; want application/json", ct)
	}
	var ans struct {
		Events []json.RawMessage `json:"events"`
		Cursor string            `json:"cursor"`
		Final  bool              `json:"final"` // see pollFinal
	}
	dec := json.NewDecoder(bytes.NewReader(a.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ans); err != nil || ans.Events == nil {
		return nil, "", fmt.Errorf("poll answer %s: %v; want {\"events\":[...],\"cursor\":...}", a.Body, err)
	}
	if _, err := protocol.ParseCursor(ans.Cursor); err != nil || !strings.Contains(ans.Cursor, ":") {
		return nil, "", fmt.Errorf("poll answer cursor %q: want <epoch>:<seq> (%v)", ans.Cursor, err)
	}
	evs := make([]protocol.Event, len(ans.Events))
	for i, raw := range ans.Events {
		ev, err := checkEvent(raw)
		if err != nil {
			return nil, "", err
		}
		evs[i] = ev
	}
	return evs, ans.Cursor, nil
}

// RoomPath is the events path of a room.
func RoomPath(room string) string { return "/v1/rooms/" + url.PathEscape(room) + "/events" }

// Head returns a stream's current cursor: where a short poll without
// since leaves off. The poll starts at the stream's live end as this
// server knows it; on a shared store (NATS) an event whose publish was
// just acknowledged may reach that a moment later, and the poll then
// returns it, with the cursor after it.
func (s *Remote) Head(t testing.TB, path string) protocol.Cursor {
	t.Helper()
	_, cur := s.Poll(t, path, "wait=0")
	c, err := protocol.ParseCursor(cur)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// History returns every event a stream holds (short polls from 0).
func (s *Remote) History(t testing.TB, path string) []protocol.Event {
	t.Helper()
	var all []protocol.Event
	since := "0"
	for range 1000 {
		evs, cur := s.Poll(t, path, "wait=0&since="+since)
		if len(evs) == 0 {
			return all
		}
		all = append(all, evs...)
		since = cur
	}
	t.Fatalf("%s holds more than 1000 polls of events", path)
	return nil
}

// Presence returns the users present in room.
func (s *Remote) Presence(t testing.TB, room string) []string {
	t.Helper()
	var p protocol.Presence
	s.Expect(t, http.MethodGet, "/v1/rooms/"+room+"/presence", "", http.StatusOK, &p)
	if p.Users == nil {
		t.Fatalf("presence of %s: no users list", room)
	}
	return p.Users
}

// Metric returns the value of one sample of /metrics: name with its
// labels as they stand there, such as `pushd_connections{transport="sse"}`.
func (s *Remote) Metric(t testing.TB, sample string) (float64, error) {
	t.Helper()
	a := s.Get(t, "/metrics")
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindSubmatch(a.Body)
	if m == nil {
		return 0, fmt.Errorf("/metrics has no %s", sample)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

// Connections returns how many open connections over transport ("ws",
// "sse", "longpoll") the server counts, as /metrics says.
func (s *Remote) Connections(t testing.TB, transport string) (int, error) {
	t.Helper()
	n, err := s.Metric(t, `pushd_connections{transport="`+transport+`"}`)
	return int(n), err
}

// WaitConnections waits until the server counts n open connections over
// transport.
func (s *Remote) WaitConnections(t testing.TB, transport string, n int) {
	t.Helper()
	testwait.Until(t, Timeout, 5*time.Millisecond, func() error {
		got, err := s.Connections(t, transport)
		if err != nil {
			return err
		}
		if got != n {
			return fmt.Errorf("%d %s connections; want %d", got, transport, n)
		}
		return nil
	})
}
