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
	token          string
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
// servers that require tokens.
func WithToken(token string) Option {
	return func(c *Client) { c.token = token }
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
// The zero Stream is not valid; make one with Room, Tasks or Task.
type Stream struct {
	kind streamKind
	id   string // the room's name or the task's id
}

type streamKind int

const (
	kindRoom streamKind = iota + 1
	kindTasks
	kindTask
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
	if s.kind == kindRoom {
		return protocol.RoomStream(s.id)
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
	}
	return "", errors.New("no stream: make one with Room, Tasks or Task")
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

// header returns the headers every request carries.
func (c *Client) header() http.Header {
	h := make(http.Header)
	h.Set("User-Agent", "pushd-go-client")
	if c.token != "" {
		h.Set("Authorization", "Bearer "+c.token)
	}
	return h
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
	req.Header = c.header()
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// maxAnswer bounds the body of a helper's answer (a poll holds at most
// protocol.MaxPollEvents events of a few KiB each).
const maxAnswer = 64 << 20

// do sends one request and decodes a JSON answer of status want into out
// (nil: discard). Any other status becomes a *protocol.Error. The request
// is bounded by ctx and extra plus the client's request timeout.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body any, extra time.Duration, want int, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.requestTimeout+extra)
	defer cancel()
	req, err := c.newRequest(ctx, method, path, q, body)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer drainClose(resp.Body)
	if resp.StatusCode != want {
		return statusError(resp)
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

// ErrAnswerBody is wrapped by the error of a call whose answer had the
// status of success but a body that could not be read or decoded (cut
// short, say): the server did what was asked, though the result is lost.
var ErrAnswerBody = errors.New("answer body unreadable")

// answerBodyError is an answer of the expected status whose body could not
// be read or decoded.
type answerBodyError struct {
	status int
	err    error
}

func (e *answerBodyError) Error() string   { return fmt.Sprintf("decode %d answer: %v", e.status, e.err) }
func (e *answerBodyError) Unwrap() []error { return []error{ErrAnswerBody, e.err} }

// notPushdError is an answer with the expected status but not the body
// pushd sends with it: something else answered.
type notPushdError struct {
	status int
	msg    string
}

func (e *notPushdError) Error() string { return e.msg }

// contentTypeOf names an answer's content type for messages.
func contentTypeOf(resp *http.Response) string {
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		return strconv.Quote(ct)
	}
	return "without a Content-Type"
}

// NotPushd reports whether err comes from an answer pushd would not give,
// and that answer's HTTP status: an error status without pushd's JSON error
// body (another web server's page, a proxy's), or the status asked for with
// a body that is not what pushd sends. It usually means the server URL
// points at something other than pushd, or at a proxy that could not reach
// it.
func NotPushd(err error) (status int, ok bool) {
	var np *notPushdError
	if errors.As(err, &np) {
		return np.status, true
	}
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.Code == "" {
		return pe.Status, true
	}
	return 0, false
}

// drainClose reads a little of what is left of body, so the connection can
// be reused, and closes it.
func drainClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 4<<10))
	_ = body.Close()
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 16 << 10

// decodeError turns an answer that is not the expected one into a
// *protocol.Error: code and message from pushd's error body when there is
// one, else an empty code and the start of whatever came back (a proxy's
// page, say). It reads, but does not close, resp.Body.
func decodeError(resp *http.Response) *protocol.Error {
	var b []byte
	if resp.Body != nil {
		b, _ = io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	}
	return errorFromBody(resp.StatusCode, resp.Header.Get("Content-Type"), b)
}

// statusError is decodeError, keeping the Retry-After header (see
// RetryAfter) when there is one.
func statusError(resp *http.Response) error {
	return withRetryAfter(decodeError(resp), resp.Header)
}

// withRetryAfter attaches h's Retry-After, if any, to pe.
func withRetryAfter(pe *protocol.Error, h http.Header) error {
	if d := parseRetryAfter(h.Get("Retry-After"), time.Now()); d > 0 {
		return &retryAfterError{err: pe, after: d}
	}
	return pe
}

// retryAfterError is an error answer that said when to try again.
type retryAfterError struct {
	err   *protocol.Error
	after time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// RetryAfter returns how long the server asked to wait before trying
// again (its Retry-After header, sent with 429 and 503 answers) when err
// came from such an answer, else 0.
func RetryAfter(err error) time.Duration {
	var ra *retryAfterError
	if errors.As(err, &ra) {
		return ra.after
	}
	return 0
}

// parseRetryAfter reads a Retry-After value: whole seconds or an HTTP
// date; 0 when absent or not valid.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// errorFromBody is decodeError on a body already read.
func errorFromBody(status int, contentType string, b []byte) *protocol.Error {
	e := &protocol.Error{Status: status}
	var body protocol.ErrorBody
	if mt, _, _ := mime.ParseMediaType(contentType); mt == "application/json" && json.Unmarshal(b, &body) == nil && body.Error.Code != "" {
		e.Code, e.Message = body.Error.Code, body.Error.Message
		return e
	}
	e.Message = "unexpected answer " + strconv.Itoa(status)
	if text := strings.TrimSpace(string(b)); text != "" {
		if len(text) > 200 {
			text = text[:200] + "..."
		}
		e.Message += ": " + text
	} else if st := http.StatusText(status); st != "" {
		e.Message += " " + st
	}
	return e
}

// Publish posts text to room as the client's user (WithUser; on a server
// with tokens, the token's user) and returns the stored event. Its seq and
// epoch say where in the room's stream it landed.
func (c *Client) Publish(ctx context.Context, room, text string) (*protocol.Event, error) {
	var ev protocol.Event
	err := c.do(ctx, http.MethodPost, "/v1/rooms/"+url.PathEscape(room)+"/messages", nil,
		protocol.PublishRequest{User: c.user, Text: text}, 0, http.StatusCreated, &ev)
	if err != nil {
		return nil, fmt.Errorf("publish to room %s: %w", room, err)
	}
	return &ev, nil
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
// opts.Since (at most protocol.MaxPollEvents) and the cursor to continue from. Without
// Since it returns no events and the stream's current cursor. It does not
// dedupe or resume; Subscribe does that.
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
// this call.
func (c *Client) Cursor(ctx context.Context, stream Stream) (protocol.Cursor, error) {
	var p protocol.Poll
	if err := c.poll(ctx, stream, PollOptions{}, &p); err != nil {
		return protocol.Cursor{}, fmt.Errorf("cursor of %s: %w", stream, err)
	}
	cur, err := protocol.ParseCursor(p.Cursor)
	if err != nil {
		return protocol.Cursor{}, fmt.Errorf("cursor of %s: server sent %w", stream, err)
	}
	return cur, nil
}
