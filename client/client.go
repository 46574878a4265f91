package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pushd/push/protocol"
)

// Client talks to one pushd server. It holds configuration only, no
// connections of its own (those belong to the *http.Client), so it is safe
// for concurrent use and needs no closing; Subscriptions made from it are
// closed one by one.
type Client struct {
	base           *url.URL
	hc             *http.Client
	user           string
	auth           tokens
	log            *slog.Logger
	requestTimeout time.Duration
}

// Option configures a Client in New.
type Option func(*Client)

// WithHTTPClient makes the client send every request, WebSocket handshakes
// included, through hc. Its Timeout must be zero, because subscriptions are
// requests that last; the client bounds each connection step itself. The
// default is http.DefaultClient.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) { c.hc = hc }
}

// WithUser sets the user the client acts as: the author of Publish.
// Presence in a room is per subscription (SubscribeOptions.User).
func WithUser(name string) Option {
	return func(c *Client) { c.user = name }
}

// WithToken makes every request carry "Authorization: Bearer <token>", for
// servers that require tokens. With WithTokenSource too, it is the first
// token, and the source gives the next ones.
func WithToken(token string) Option {
	return func(c *Client) { c.auth.token = token }
}

// WithLogger sends the client's logs (reconnects, transport fallbacks) to
// l. The default discards them.
func WithLogger(l *slog.Logger) Option {
	return func(c *Client) { c.log = l }
}

// WithRequestTimeout bounds each single request made by the helpers
// (Publish, Presence, the task calls, a poll's answer beyond its wait),
// on top of the caller's context. The default is 30 s; zero or less keeps
// the default.
func WithRequestTimeout(d time.Duration) Option {
	return func(c *Client) {
		if d > 0 {
			c.requestTimeout = d
		}
	}
}

// defaultRequestTimeout bounds one helper request when the option is not set.
const defaultRequestTimeout = 30 * time.Second

// New returns a client for the server at baseURL, such as
// "http://127.0.0.1:8080" (a path prefix is kept: "https://host/push").
// It makes no request.
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("client: server URL %q: %w", baseURL, err)
	}
	switch u.Scheme {
	case "http", "https":
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	default:
		return nil, fmt.Errorf("client: server URL %q: want http:// or https://", baseURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("client: server URL %q has no host", baseURL)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("client: server URL %q: port %s is not from 1 to 65535", baseURL, p)
		}
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	u.RawQuery, u.Fragment = "", ""
	c := &Client{base: u, hc: http.DefaultClient, requestTimeout: defaultRequestTimeout}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		c.hc = http.DefaultClient
	}
	if c.hc.Timeout != 0 {
		return nil, errors.New("client: the *http.Client must have no Timeout (subscriptions are long requests); bound calls with contexts")
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// User returns the user the client acts as (WithUser), or "".
func (c *Client) User() string { return c.user }

// BaseURL returns the server's base URL as New cleaned it.
func (c *Client) BaseURL() string { return c.base.String() }

// Stream names something to subscribe to: a room, all tasks, or one task.
// The zero Stream is not valid; make one with Room, Tasks, Task or Stats.
type Stream struct {
	kind streamKind
	id   string // the room's name or the task's id
}

type streamKind int

const (
	kindRoom streamKind = iota + 1
	kindTasks
	kindTask
	kindStats
)

// Room is the stream of a chat room.
func Room(name string) Stream { return Stream{kind: kindRoom, id: name} }

// Tasks is the stream of every task's progress.
func Tasks() Stream { return Stream{kind: kindTasks} }

// Task is one task's progress: the tasks stream filtered to that task, so
// its cursors are those of the tasks stream.
func Task(id string) Stream { return Stream{kind: kindTask, id: id} }

// Name returns the name of the stream the events carry ("room/lobby",
// "tasks"); one task's stream is "tasks" too.
func (s Stream) Name() string {
	switch s.kind {
	case kindRoom:
		return protocol.RoomStream(s.id)
	case kindStats:
		return protocol.StatsStream
	}
	return protocol.TasksStream
}

// String describes the stream for messages: "room lobby", "tasks",
// "task t42".
func (s Stream) String() string {
	switch s.kind {
	case kindRoom:
		return "room " + s.id
	case kindTasks:
		return "tasks"
	case kindTask:
		return "task " + s.id
	case kindStats:
		return "stats"
	}
	return "no stream"
}

// eventsPath is the stream's subscribe path.
func (s Stream) eventsPath() (string, error) {
	switch s.kind {
	case kindRoom:
		return "/v1/rooms/" + url.PathEscape(s.id) + "/events", nil
	case kindTasks:
		return "/v1/tasks/events", nil
	case kindTask:
		return "/v1/tasks/" + url.PathEscape(s.id) + "/events", nil
	case kindStats:
		return statsPath + "/events", nil
	}
	return "", errors.New("no stream: make one with Room, Tasks, Task or Stats")
}

// url returns the absolute URL of path (already escaped) with query q.
func (c *Client) url(path string, q url.Values) string {
	u := *c.base
	u.RawPath = c.base.EscapedPath() + path
	if p, err := url.PathUnescape(u.RawPath); err == nil {
		u.Path = p
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// withLimit returns q asking for at most limit items; 0 leaves the number
// to the server.
func withLimit(q url.Values, limit int) url.Values {
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	return q
}

// header returns the headers every request carries, with the token to
// send now (see tokens).
func (c *Client) header(ctx context.Context) (http.Header, error) {
	h := make(http.Header)
	h.Set("User-Agent", "pushd-go-client")
	token, err := c.auth.current(ctx)
	if err != nil {
		return nil, err
	}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return h, nil
}

// newRequest builds a request to path with the client's headers.
func (c *Client) newRequest(ctx context.Context, method, path string, q url.Values, body any) (*http.Request, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(path, q), r)
	if err != nil {
		return nil, err
	}
	if req.Header, err = c.header(ctx); err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// maxAnswer bounds the body of a helper's answer (a poll holds at most
// protocol.MaxPollEvents events of a few KiB each).
const maxAnswer = 64 << 20

// drainClose reads a little of what is left of body, so the connection can
// be reused, and closes it.
func drainClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 4<<10))
	_ = body.Close()
}

// do sends one request and decodes a JSON answer of status want into out
// (nil: discard). Any other status becomes a *protocol.Error. The request
// is bounded by ctx and extra plus the client's request timeout. A token
// the server refuses is renewed from the client's token source, if it has
// one, and the request made once more with the new one.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body any, extra time.Duration, want int, out any) error {
	return c.authed(ctx, func() error { return c.doOnce(ctx, method, path, q, body, extra, want, out) })
}

// authed makes a request with try, and, when the server refused its token
// and the client's token source gives a new one, once more.
func (c *Client) authed(ctx context.Context, try func() error) error {
	sent, _ := c.auth.current(ctx)
	err := try()
	if err != nil && c.renewAfter(ctx, err, sent) {
		err = try()
	}
	return err
}

// doOnce is one try of do.
func (c *Client) doOnce(ctx context.Context, method, path string, q url.Values, body any, extra time.Duration, want int, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.requestTimeout+extra)
	defer cancel()
	req, err := c.newRequest(ctx, method, path, q, body)
	if err != nil {
		return err
	}
	return c.send(req, out, want)
}

// send sends req and decodes a JSON answer of one of the statuses want
// into out (nil: discard); any other status becomes a *protocol.Error.
func (c *Client) send(req *http.Request, out any, want ...int) error {
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer drainClose(resp.Body)
	if !slices.Contains(want, resp.StatusCode) {
		return decodeError(resp)
	}
	if out == nil {
		return nil
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
		// pushd answers JSON; this is some other server's page.
		return &notPushdError{status: resp.StatusCode,
			msg: fmt.Sprintf("%d answer is %s, not JSON", resp.StatusCode, contentTypeOf(resp))}
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswer)).Decode(out); err != nil {
		return &answerBodyError{status: resp.StatusCode, err: err}
	}
	return nil
}

// Presence returns who is in room now, sorted.
func (c *Client) Presence(ctx context.Context, room string) ([]string, error) {
	var p protocol.Presence
	if err := c.do(ctx, http.MethodGet, "/v1/rooms/"+url.PathEscape(room)+"/presence", nil, nil, 0, http.StatusOK, &p); err != nil {
		return nil, fmt.Errorf("presence of room %s: %w", room, err)
	}
	if p.Users == nil {
		p.Users = []string{}
	}
	return p.Users, nil
}

// PollOptions are the parameters of one poll.
type PollOptions struct {
	// Since is the cursor to continue after; empty asks for the live end,
	// "0" for the start.
	Since string
	// Wait is how long the server may hold the request when nothing
	// follows Since (long polling; the server caps it). Zero is a short
	// poll that answers at once.
	Wait time.Duration
	// User, for rooms, counts as present while polls keep coming.
	User string
}

// Poll makes one short or long poll of stream: the events after
// opts.Since (at most protocol.MaxPollEvents) and the cursor to continue
// from. Without Since it returns no events and the stream's current
// cursor, except for one task's stream of a task that has ended: that
// answers with the task's final event. An answer with Final ends the
// stream: there is nothing more to poll for. It does not dedupe or
// resume; Subscribe does that.
func (c *Client) Poll(ctx context.Context, stream Stream, opts PollOptions) (*protocol.Poll, error) {
	var p protocol.Poll
	if err := c.poll(ctx, stream, opts, &p); err != nil {
		return nil, fmt.Errorf("poll %s: %w", stream, err)
	}
	return &p, nil
}

func (c *Client) poll(ctx context.Context, stream Stream, opts PollOptions, out *protocol.Poll) error {
	path, err := stream.eventsPath()
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodGet, path, pollQuery(opts), nil, opts.Wait, http.StatusOK, out)
}

// pollQuery is the query of a poll.
func pollQuery(opts PollOptions) url.Values {
	q := url.Values{}
	if opts.Since != "" {
		q.Set("since", opts.Since)
	}
	if opts.User != "" {
		q.Set("user", opts.User)
	}
	q.Set("wait", opts.Wait.String())
	return q
}

// Cursor returns the stream's current position, "now": a subscription
// started with it as Since receives exactly the events published after
// this call. For one task's stream of a task that has ended, it is the
// cursor of the task's final event.
func (c *Client) Cursor(ctx context.Context, stream Stream) (protocol.Cursor, error) {
	_, cur, err := c.head(ctx, stream)
	return cur, err
}

// head makes the short poll without since that Cursor makes, and returns
// its answer too.
func (c *Client) head(ctx context.Context, stream Stream) (*protocol.Poll, protocol.Cursor, error) {
	var p protocol.Poll
	if err := c.poll(ctx, stream, PollOptions{}, &p); err != nil {
		return nil, protocol.Cursor{}, fmt.Errorf("cursor of %s: %w", stream, err)
	}
	cur, err := protocol.ParseCursor(p.Cursor)
	if err != nil {
		return nil, protocol.Cursor{}, fmt.Errorf("cursor of %s: server sent %w", stream, err)
	}
	return &p, cur, nil
}
