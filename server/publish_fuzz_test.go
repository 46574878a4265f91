package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// FuzzPublishRequest drives the publish handler with arbitrary bodies and
// content types: the answer is never a 5xx and never a panic; it is 201
// with the stored message, or a documented 4xx with the error body; and a
// 201 happens exactly when the body is one well-formed request. Its seed
// corpus runs as a normal test.
func FuzzPublishRequest(f *testing.F) {
	for _, seed := range []struct{ ctype, body string }{
		{"application/json", `{"user":"alice","text":"hi"}`},
		{"application/json", `{"user":"alice","text":"hi"}` + "\n"},
		{"application/json; charset=utf-8", `{"text":"<&>","user":"a.b-c_d"}`},
		{"application/json", `{"user":"alice","text":"hi","x":1}`},
		{"application/json", `{"user":"alice","text":"hi"}{}`},
		{"application/json", `{"user":"alice","text":5}`},
		{"application/json", `{"user":"alice","text":""}`},
		{"application/json", `{"user":"a/b","text":"x"}`},
		{"application/json", `{"user":"alice","text":"` + strings.Repeat("x", 4097) + `"}`},
		{"application/json", `{"user":"alice","text":"\ud800"}`},
		{"application/json", `{"user":"alice","text":"\u001b]0;pwned\u0007\u001b[2J"}`},
		{"application/json", `{"user":"alice","text":"two\nlines\tand a tab"}`},
		{"application/json", `{"user":"alice","text":"c1 \u009b2J"}`},
		{"application/json", "{\"user\":\"alice\",\"text\":\"\xff\"}"},
		{"application/json", `null`},
		{"application/json", `[]`},
		{"application/json", `{"USER":"alice","Text":"case"}`},
		{"application/json", `{"user":"alice","user":"bob","text":"dup"}`},
		{"application/json", `{`},
		{"application/json", ``},
		{"text/plain", `{"user":"alice","text":"hi"}`},
		{"", `{"user":"alice","text":"hi"}`},
		{"application/json;;", `{}`},
	} {
		f.Add(seed.ctype, []byte(seed.body))
	}
	srv, err := server.New(server.Config{History: 100, AllowedHosts: []string{newRequestHost}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		if err := srv.Shutdown(context.Background()); err != nil {
			f.Error(err)
		}
	})
	codes := map[int][]string{
		400: {protocol.CodeInvalidJSON, protocol.CodeInvalidName, protocol.CodeEmptyText, protocol.CodeInvalidParam},
		413: {protocol.CodeTextTooLong, protocol.CodeBodyTooLarge},
		415: {protocol.CodeUnsupportedMedia},
	}
	f.Fuzz(func(t *testing.T, ctype string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/v1/rooms/fuzz/messages", bytes.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("Content-Type %q body %q: %d %s", ctype, body, rec.Code, rec.Body)
		}
		well, judged := wellFormedPublish(ctype, body)
		if rec.Code == http.StatusCreated {
			var ev protocol.Event
			if err := json.Unmarshal(rec.Body.Bytes(), &ev); err != nil || ev.Type != protocol.TypeMessage || ev.Seq == 0 || ev.Stream != "room/fuzz" {
				t.Fatalf("body %q: 201 with %s", body, rec.Body)
			}
			if judged && (well == nil || ev.User != well.User || ev.Text != well.Text) {
				t.Fatalf("Content-Type %q body %q was accepted as %s; want it refused", ctype, body, rec.Body)
			}
			return
		}
		if judged && well != nil {
			t.Fatalf("Content-Type %q body %q: %d %s; want 201", ctype, body, rec.Code, rec.Body)
		}
		var e protocol.ErrorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Message == "" {
			t.Fatalf("body %q: %d with %q; want the error body", body, rec.Code, rec.Body)
		}
		known := false
		for _, c := range codes[rec.Code] {
			known = known || c == e.Error.Code
		}
		if !known {
			t.Fatalf("body %q: %d %s; not a documented answer", body, rec.Code, e.Error.Code)
		}
	})
}

// wellFormedPublish is an independent reading of the rules for the content
// types it judges (judged false for the others): it returns the request
// when ctype and body make an acceptable publish, else nil.
func wellFormedPublish(ctype string, body []byte) (req *protocol.PublishRequest, judged bool) {
	mt, _, _ := strings.Cut(ctype, ";")
	switch {
	case !strings.EqualFold(strings.TrimSpace(mt), "application/json"):
		return nil, true // 415
	case ctype != "application/json" && ctype != "application/json; charset=utf-8":
		return nil, false // media type parameters are the parser's business
	case len(body) > 64<<10:
		return nil, true
	case !utf8.Valid(body):
		return nil, true // JSON is UTF-8
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var r protocol.PublishRequest
	if err := dec.Decode(&r); err != nil {
		return nil, true
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, true // something after the value
	}
	var raw map[string]json.RawMessage
	if json.Unmarshal(body, &raw) != nil || raw == nil {
		return nil, true
	}
	if protocol.ValidateName("user", r.User) != nil || strings.TrimSpace(r.Text) == "" || len(r.Text) > 4096 || !utf8.ValidString(r.Text) {
		return nil, true
	}
	// Control characters (C0, DEL, C1) but newline (LF, CR LF) and tab
	// are refused.
	if strings.ContainsFunc(strings.ReplaceAll(r.Text, "\r\n", "\n"), func(c rune) bool { return c != '\n' && c != '\t' && (c < 0x20 || c >= 0x7f && c <= 0x9f) }) {
		return nil, true
	}
	return &r, true
}
