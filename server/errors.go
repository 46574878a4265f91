package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/pushd/push/protocol"
)

// writeError writes err as the JSON error body. Errors that are not a
// *protocol.Error are server faults: they are logged and answered with a
// 500 that does not leak details.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *protocol.Error
	switch {
	case errors.As(err, &ae):
	case errors.Is(err, ErrTooManyStreams):
		ae = protocol.Errorf(http.StatusServiceUnavailable, protocol.CodeUnavailable, "this server holds as many rooms in use as it may (%d); try an existing room, or again later", s.cfg.Limits.MaxStreams).RetryIn(5 * time.Second)
	case errors.Is(err, ErrUnavailable):
		s.log.Warn("store unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		ae = protocol.Errorf(http.StatusServiceUnavailable, protocol.CodeUnavailable, "the server cannot reach its event store right now; retry in a moment").RetryIn(time.Second)
	case errors.Is(err, ErrStoreClosed), errors.Is(err, ErrShutdown):
		ae = protocol.Errorf(http.StatusServiceUnavailable, protocol.CodeUnavailable, "the server is shutting down; retry in a moment")
	}
	if ae == nil {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		ae = protocol.Errorf(http.StatusInternalServerError, protocol.CodeInternal, "internal error; the server log has the details")
	}
	if ae.RetryAfter > 0 {
		secs := int(math.Ceil(ae.RetryAfter.Seconds()))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	s.metrics.rejected.WithLabelValues(ae.Code).Inc()
	writeJSON(w, ae.Status, ae.Body())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"internal error: encode answer"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// marshal encodes v as JSON followed by a newline, leaving <, > and &
// as they are: answers are data, not HTML.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decodeJSON reads a JSON request body into v: application/json only, at
// most the body limit, no unknown fields, nothing after the value.
func (s *Server) decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || mt != "application/json" {
		return protocol.Errorf(http.StatusUnsupportedMediaType, protocol.CodeUnsupportedMedia,
			"the body must be JSON with Content-Type: application/json (got %q)", ct)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		return jsonError(err, s.cfg.MaxBodyBytes)
	}
	// JSON is UTF-8; the decoder would turn bad bytes into U+FFFD quietly.
	if at := invalidUTF8(body); at >= 0 {
		return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidJSON, "the body is not valid UTF-8 (at byte %d); send JSON in UTF-8", at)
	}
	if string(bytes.TrimSpace(body)) == "null" {
		return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidJSON, "the body must be a JSON object, not null")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, s.cfg.MaxBodyBytes)
	}
	if dec.More() {
		return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidJSON, "the body must be one JSON object; found more after it")
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); err == nil {
		return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidJSON, "the body must be one JSON object; found more after it")
	} else if !errors.Is(err, io.EOF) {
		return jsonError(err, s.cfg.MaxBodyBytes)
	}
	return nil
}

// invalidUTF8 returns the offset of the first byte of b that is not valid
// UTF-8, or -1.
func invalidUTF8(b []byte) int {
	if utf8.Valid(b) {
		return -1
	}
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return -1
}

// jsonKind says what JSON value a Go type takes, in JSON's words: "a JSON
// object", "a whole number in range".
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "a JSON object"
	case reflect.Slice, reflect.Array:
		return "a JSON array"
	case reflect.String:
		return "a JSON string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number in range"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number, 0 or more, in range"
	case reflect.Float32, reflect.Float64:
		return "a JSON number"
	}
	return "a JSON value of another kind"
}

// typeError says what a JSON value of the wrong kind should have been.
func typeError(typeErr *json.UnmarshalTypeError) string {
	if typeErr.Field == "" {
		return fmt.Sprintf("the body must be %s, not %s", jsonKind(typeErr.Type), typeErr.Value)
	}
	return fmt.Sprintf("field %q must be %s, not %s", typeErr.Field, jsonKind(typeErr.Type), typeErr.Value)
}

// jsonError turns a decoding error into a 400 or 413 that says what is wrong.
func jsonError(err error, limit int64) *protocol.Error {
	var maxErr *http.MaxBytesError
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return protocol.Errorf(http.StatusRequestTimeout, protocol.CodeTimeout, "the body did not arrive in time; send it whole, promptly")
	case errors.As(err, &maxErr):
		return protocol.Errorf(http.StatusRequestEntityTooLarge, protocol.CodeBodyTooLarge, "the body is over the limit of %d bytes", limit)
	case errors.As(err, &syntaxErr):
		return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidJSON, "malformed JSON at byte %d: %v", syntaxErr.Offset, err)
	case errors.As(err, &typeErr):
		return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidJSON, "%s", typeError(typeErr))
	case errors.Is(err, io.EOF):
		return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidJSON, "the body is empty; send a JSON object")
	default:
		// Unknown fields and truncated bodies: the decoder's text says which.
		return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidJSON, "invalid JSON body: %v", err)
	}
}
