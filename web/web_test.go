package web_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pushd/push/web"
)

// TestHandlerServesTheAssetsAndPassesTheRest: the app at the exact root,
// its files and pushd.js (to any origin) with their types; every other
// path and method goes to the API.
func TestHandlerServesTheAssetsAndPassesTheRest(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-From", "api")
		w.WriteHeader(http.StatusTeapot)
	})
	h := web.Handler(api)
	for _, c := range []struct {
		method, path, ctype string
		cors, csp           bool
	}{
		{http.MethodGet, "/", "text/html; charset=utf-8", false, true},
		{http.MethodGet, "/?room=lobby&user=ann", "text/html; charset=utf-8", false, true},
		{http.MethodGet, "/app.js", "text/javascript; charset=utf-8", false, false},
		{http.MethodGet, "/app.css", "text/css; charset=utf-8", false, false},
		{http.MethodGet, "/stats", "text/html; charset=utf-8", false, true},
		{http.MethodGet, "/stats.js", "text/javascript; charset=utf-8", false, false},
		{http.MethodGet, "/stats.css", "text/css; charset=utf-8", false, false},
		{http.MethodGet, "/pushd.js", "text/javascript; charset=utf-8", true, false},
		{http.MethodHead, "/pushd.js", "text/javascript; charset=utf-8", true, false},
		{http.MethodGet, "/pushd.d.ts", "text/plain; charset=utf-8", true, false},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(c.method, c.path, nil)
		req.Header.Set("Origin", "http://elsewhere.example")
		h.ServeHTTP(rec, req)
		res := rec.Result()
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != c.ctype {
			t.Errorf("%s %s: %d %q; want 200 %q", c.method, c.path, res.StatusCode, res.Header.Get("Content-Type"), c.ctype)
		}
		if got := res.Header.Get("Access-Control-Allow-Origin") == "*"; got != c.cors {
			t.Errorf("%s %s: Access-Control-Allow-Origin %q", c.method, c.path, res.Header.Get("Access-Control-Allow-Origin"))
		}
		if got := strings.Contains(res.Header.Get("Content-Security-Policy"), "default-src 'none'"); got != c.csp {
			t.Errorf("%s %s: Content-Security-Policy %q", c.method, c.path, res.Header.Get("Content-Security-Policy"))
		}
		if res.Header.Get("ETag") == "" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s %s: no ETag or nosniff: %v", c.method, c.path, res.Header)
		}
		if c.method == http.MethodGet && rec.Body.Len() == 0 {
			t.Errorf("%s %s: empty body", c.method, c.path)
		}
		again := httptest.NewRequest(c.method, c.path, nil)
		again.Header.Set("If-None-Match", res.Header.Get("ETag"))
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, again)
		if rec.Code != http.StatusNotModified {
			t.Errorf("%s %s with its ETag: %d; want 304", c.method, c.path, rec.Code)
		}
	}
	for _, c := range []struct{ method, path string }{
		{http.MethodPost, "/"},
		{http.MethodPost, "/pushd.js"},
		{http.MethodGet, "/index.html"},
		{http.MethodGet, "/app/app.js"},
		{http.MethodGet, "/v1/rooms/lobby/events"},
		{http.MethodGet, "/metrics"},
		{http.MethodOptions, "/pushd.js"},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
		if rec.Code != http.StatusTeapot || rec.Header().Get("X-From") != "api" {
			t.Errorf("%s %s: %d; want it passed to the API", c.method, c.path, rec.Code)
		}
	}
}

// exports returns the names a module exports, from "export class X",
// "export function X", "export const X", and for the types file also
// "export type" and "export interface" when types is set.
func exports(t *testing.T, path string, types bool) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	kinds := "class|function|const"
	if types {
		kinds += "|type|interface"
	}
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^export (?:`+kinds+`) (\w+)`).FindAllStringSubmatch(string(b), -1) {
		names = append(names, m[1])
	}
	slices.Sort(names)
	return names
}

// members returns the public members of class (methods and getters) as
// the source declares them, up to the class's closing brace at column 0.
func members(t *testing.T, path, class string, dts bool) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	start := regexp.MustCompile(`(?m)^(?:export )?(?:class|interface) ` + class + `\b[^{]*\{`).FindStringIndex(src)
	if start == nil {
		t.Fatalf("%s: no class %s", path, class)
	}
	body := src[start[1]:]
	body = body[:strings.Index(body, "\n}")]
	re := regexp.MustCompile(`(?m)^  (?:async |get |readonly )?([a-zA-Z]\w*)\s*[(:]`)
	if dts {
		re = regexp.MustCompile(`(?m)^  (?:readonly )?([a-zA-Z]\w*)\s*[(:]`)
	}
	var names []string
	for _, m := range re.FindAllStringSubmatch(body, -1) {
		if m[1] != "constructor" && !slices.Contains(names, m[1]) {
			names = append(names, m[1])
		}
	}
	slices.Sort(names)
	return names
}

// TestTypesMatchTheModule: pushd.d.ts declares what pushd.js exports, and
// the same public members of Client and Subscription.
func TestTypesMatchTheModule(t *testing.T) {
	values := exports(t, "pushd.js", false)
	var declared []string
	for _, n := range exports(t, "pushd.d.ts", true) {
		b, _ := os.ReadFile("pushd.d.ts")
		if regexp.MustCompile(`(?m)^export (?:class|function|const) ` + n + `\b`).Match(b) {
			declared = append(declared, n)
		}
	}
	if !slices.Equal(values, declared) {
		t.Errorf("pushd.js exports %v; pushd.d.ts declares %v", values, declared)
	}
	for _, class := range []string{"Client", "Subscription"} {
		js, ts := members(t, "pushd.js", class, false), members(t, "pushd.d.ts", class, true)
		if len(js) < 3 || !slices.Equal(js, ts) {
			t.Errorf("%s: pushd.js has %v; pushd.d.ts declares %v", class, js, ts)
		}
	}
}
