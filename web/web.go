// Package web is pushd's browser side: pushd.js, the browser client (a
// plain ES module with pushd.d.ts beside it), and the web app built on it,
// embedded in the binary. Handler puts them in front of the API.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"net/http"
	"path"
	"time"
)

//go:embed pushd.js pushd.d.ts app
var files embed.FS

// asset is one embedded file as served.
type asset struct {
	name  string // the embedded file
	ctype string
	cors  bool // any page may load it (the client library)
	csp   bool // the app's page: a strict Content-Security-Policy
	body  []byte
	etag  string
}

// pageCSP lets the app's page load its own script and style and talk to
// its own server, and nothing else.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// assets maps each path served to its file.
var assets = map[string]*asset{
	"/":           {name: "app/index.html", ctype: "text/html; charset=utf-8", csp: true},
	"/app.js":     {name: "app/app.js", ctype: "text/javascript; charset=utf-8"},
	"/app.css":    {name: "app/app.css", ctype: "text/css; charset=utf-8"},
	"/stats":      {name: "app/stats.html", ctype: "text/html; charset=utf-8", csp: true},
	"/stats.js":   {name: "app/stats.js", ctype: "text/javascript; charset=utf-8"},
	"/stats.css":  {name: "app/stats.css", ctype: "text/css; charset=utf-8"},
	"/pushd.js":   {name: "pushd.js", ctype: "text/javascript; charset=utf-8", cors: true},
	"/pushd.d.ts": {name: "pushd.d.ts", ctype: "text/plain; charset=utf-8", cors: true},
}

func init() {
	for p, a := range assets {
		b, err := files.ReadFile(a.name)
		if err != nil {
			panic(fmt.Sprintf("web: %s (for %s) is not embedded: %v", a.name, p, err))
		}
		sum := sha256.Sum256(b)
		a.body, a.etag = b, `"`+hex.EncodeToString(sum[:12])+`"`
	}
}

// Handler serves the web app at / (the exact root), its stats page at
// /stats, their files, and
// pushd.js and pushd.d.ts to pages of any origin (they are public and
// carry no credentials; the API behind still checks each page's origin).
// GET and HEAD of those paths are answered here; every other request goes
// to api. Answers carry an ETag and are revalidated on each load, so a new
// binary's files are picked up at once.
func Handler(api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := assets[r.URL.Path]
		if !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			api.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.ctype)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		h.Set("X-Content-Type-Options", "nosniff")
		if a.cors {
			h.Set("Access-Control-Allow-Origin", "*")
		}
		if a.csp {
			h.Set("Content-Security-Policy", pageCSP)
			h.Set("Referrer-Policy", "no-referrer")
			h.Set("X-Frame-Options", "DENY")
		}
		http.ServeContent(w, r, path.Base(a.name), time.Time{}, bytes.NewReader(a.body))
	})
}
