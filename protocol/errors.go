package protocol

import (
	"fmt"
	"net/http"
	"time"
)

// Error codes of the error body. Clients branch on the code, people read the
// message.
const (
	CodeInvalidJSON      = "invalid_json"       // 400: body is not valid JSON, has unknown fields or wrong types
	CodeInvalidName      = "invalid_name"       // 400: room or user name outside [A-Za-z0-9._-]{1,64}
	CodeInvalidCursor    = "invalid_cursor"     // 400: since= or Last-Event-ID is not a cursor
	CodeInvalidParam     = "invalid_param"      // 400: a query parameter or field has a bad value
	CodeEmptyText        = "empty_text"         // 400: message text is empty
	CodeTextTooLong      = "text_too_long"      // 413: message text over the limit
	CodeBodyTooLarge     = "body_too_large"     // 413: request body over the limit
	CodeUnsupportedMedia = "unsupported_media"  // 415: body is not application/json
	CodeMethodNotAllowed = "method_not_allowed" // 405
	CodeUnauthorized     = "unauthorized"       // 401: no token, or one that is expired or not valid here
	CodeForbidden        = "forbidden"          // 403: a valid token that does not allow this
	CodeNotFound         = "not_found"          // 404
	CodeMisdirected      = "misdirected"        // 421: a host name the server does not answer to
	CodeTimeout          = "timeout"            // 408: the request body did not arrive in time
	CodeConflict         = "conflict"           // 409: the request does not fit the resource's state
	CodeRateLimited      = "rate_limited"       // 429: too many requests or connections; see Retry-After
	CodeUnavailable      = "unavailable"        // 503: the server cannot take it now; retry
	CodeInternal         = "internal"           // 500: a server fault, never a client mistake
)

// ErrorBody is the JSON body of every 4xx and 5xx answer:
// {"error":{"code":"<slug>","message":"<text>"}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error is an error answer: the HTTP status, the code and message of the
// error body, and when to try again. The server answers with it, clients
// get it back from a failed request, and servers pass it to each other.
type Error struct {
	Status  int    `json:"status"`
	Code    string `json:"code"` // one of the Code* constants; "" when the answer had no pushd error body
	Message string `json:"message"`
	// RetryAfter is how long to wait before trying again: the
	// Retry-After header of 429 and 503 answers, in whole seconds on the
	// wire; 0 when the answer said nothing.
	RetryAfter time.Duration `json:"retry_after,omitempty"`
}

// Errorf returns an *Error with a formatted message.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// RetryIn sets e's RetryAfter and returns e.
func (e *Error) RetryIn(d time.Duration) *Error {
	e.RetryAfter = d
	return e
}

func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("%s (%d)", e.Message, e.Status)
	}
	return fmt.Sprintf("%s (%d %s)", e.Message, e.Status, e.Code)
}

// Temporary reports whether the same request may succeed later, unchanged:
// the answer was a timeout (408), a rate limit (429) or a server-side
// failure (5xx). Any other error status refuses the request for what it
// is, and sending it again gets the same answer.
func (e *Error) Temporary() bool {
	return e.Status == http.StatusRequestTimeout || e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// Body returns e as the JSON error body.
func (e *Error) Body() ErrorBody {
	return ErrorBody{Error: ErrorDetail{Code: e.Code, Message: e.Message}}
}
