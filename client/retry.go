package client

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"

	"github.com/pushd/push/protocol"
)

// Retryable reports whether trying the same request again may succeed
// after err. It may when there was no answer at all (the server out of
// reach, a connection cut, a timeout, nothing heard for too long), when
// the answer was lost (ErrAnswerBody), when the server ended a stream for
// a passing reason (a CloseError other than a refusal or the stream's
// end, protocol.CloseTaskFinished), and when the
// answer was a temporary one (protocol.Error.Temporary: 408, 429, 5xx),
// whoever sent it. It may not when the answer refused the request for
// what it is, which sending it again does not change: any other error
// status, from pushd or from something in front of it (a proxy's 404 too);
// a success that pushd would not answer (NotPushd); a transport refused
// with an answer that is not one (a failed WebSocket handshake, an SSE
// answer that is not an event stream); or a WebSocket close 1008. Whether
// the caller still wants to try (its context) is the caller's to check.
//
// Subscriptions reconnect after what is retryable and end on the rest.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe.Temporary()
	}
	if errors.Is(err, ErrAnswerBody) {
		return true
	}
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code != closePolicyViolation && ce.Reason != protocol.CloseTaskFinished
	}
	var np *notPushdError
	if errors.As(err, &np) {
		return false
	}
	var re *refusedError
	if errors.As(err, &re) {
		return re.transient
	}
	return true
}

// MayHaveApplied reports whether the server may have done what a failed
// request asked, so that sending it again may do it twice: the request
// may have reached the server and no answer said it was not done. That is
// so after a connection cut once the request was sent, a timeout, a
// success whose body was lost (ErrAnswerBody), and a 5xx or 408 answer
// (a 503 may come after the store took a message but could not confirm it
// in time). It is not so when the connection was never made (a dial
// failure), after any other answer (a 429 or a 4xx refused the request),
// or for an error that is not a request's.
func MayHaveApplied(err error) bool {
	if errors.Is(err, ErrAnswerBody) {
		return true
	}
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe.Status >= 500 || pe.Status == http.StatusRequestTimeout
	}
	if isDialError(err) {
		return false // never connected: connection refused, no route
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var ue *url.Error
	return errors.As(err, &ue)
}
