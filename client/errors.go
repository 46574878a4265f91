package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pushd/push/protocol"
)

// The errors of the client, beside *protocol.Error (an error answer):
// what callers branch on, and what the subscription's reconnect decision
// reads (see Retryable).

// ErrAnswerBody is wrapped by the error of a call whose answer had the
// status of success but a body that could not be read or decoded (cut
// short, say): the server did what was asked, though the result is lost.
var ErrAnswerBody = errors.New("answer body unreadable")

// ErrQuiet is why a connection was dropped when nothing, not even a
// heartbeat, came from the server for longer than its heartbeat promises.
var ErrQuiet = errors.New("nothing from the server")

// errBadEvent: the server sent something that is not an event.
var errBadEvent = errors.New("malformed event from server")

// errEnded: a poll's answer said the stream has ended ("final": one task's
// stream after the task's final event).
var errEnded = errors.New("the stream has ended")

// streamEnded reports whether err is the server saying that the stream has
// ended for good, as one task's stream does after the task's final event:
// a close with the reason protocol.CloseTaskFinished, or a poll's answer
// with Final. The subscription ends then, without an error.
func streamEnded(err error) bool {
	var ce *CloseError
	return errors.Is(err, errEnded) || errors.As(err, &ce) && ce.Reason == protocol.CloseTaskFinished
}

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

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 16 << 10

// decodeError turns an answer that is not the expected one into a
// *protocol.Error: code and message from pushd's error body when there is
// one, else an empty code and the start of whatever came back (a proxy's
// page, say); RetryAfter from the Retry-After header. It reads, but does
// not close, resp.Body.
func decodeError(resp *http.Response) *protocol.Error {
	var b []byte
	if resp.Body != nil {
		b, _ = io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	}
	e := &protocol.Error{Status: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	var body protocol.ErrorBody
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/json" && json.Unmarshal(b, &body) == nil && body.Error.Code != "" {
		e.Code, e.Message = body.Error.Code, body.Error.Message
		return e
	}
	e.Message = "unexpected answer " + strconv.Itoa(resp.StatusCode)
	if text := strings.TrimSpace(string(b)); text != "" {
		if len(text) > 200 {
			text = text[:200] + "..."
		}
		e.Message += ": " + text
	} else if st := http.StatusText(resp.StatusCode); st != "" {
		e.Message += " " + st
	}
	return e
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

// RetryAfter returns the RetryAfter of the *protocol.Error in err's chain:
// how long the server asked to wait before trying again (the Retry-After
// header of 429 and 503 answers); 0 when there is none.
func RetryAfter(err error) time.Duration {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe.RetryAfter
	}
	return 0
}

// CloseError is the server ending a connection on purpose: a WebSocket
// close frame, or an SSE close event (see PROTOCOL.md). A subscription
// reconnects after one, except after a refusal (WebSocket 1008) and the
// end of a stream (reason protocol.CloseTaskFinished), which ends it.
type CloseError struct {
	// Code is the WebSocket close code; 0 for SSE.
	Code int
	// Reason is the close reason, such as protocol.CloseShutdown, or for
	// a refusal the server's message.
	Reason string
	// Message is the SSE close event's message, for a person.
	Message string
}

func (e *CloseError) Error() string {
	msg := "server closed the connection"
	if e.Code != 0 {
		msg += fmt.Sprintf(" (%d)", e.Code)
	}
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// closePolicyViolation is the WebSocket close code by which the server
// refuses a request.
const closePolicyViolation = 1008

// refusedError says the server (or something on the way) answered the
// request but not with the transport asked for: a WebSocket upgrade that
// did not get 101, an SSE request that did not get an event stream. Auto
// mode falls back to the next transport, unless the answer refused the
// credentials (see credentials).
type refusedError struct {
	transport Transport
	err       error // a *protocol.Error when there was an unexpected status
	// transient: there was no answer at all (the connection broke or
	// timed out during the handshake). Auto mode falls back all the same;
	// when the transport was the only one allowed, it is retried.
	transient bool
}

func (e *refusedError) Error() string {
	return fmt.Sprintf("%s refused: %v", e.transport, e.err)
}

func (e *refusedError) Unwrap() error { return e.err }

// credentials reports whether the refusal is of the request's credentials,
// not of the transport: a 401, or pushd's own 403 (a 403 without pushd's
// error body may be a proxy that blocks only this transport).
func (e *refusedError) credentials() bool {
	var pe *protocol.Error
	if !errors.As(e.err, &pe) {
		return false
	}
	return pe.Status == http.StatusUnauthorized || (pe.Status == http.StatusForbidden && pe.Code != "")
}

// isDialError reports whether err happened before a connection was made
// (refused, unreachable, no such host).
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
