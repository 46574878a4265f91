package web_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/server"
	"github.com/pushd/push/web"
)

// TestReadmeExample runs README's "From a web page" example, as written
// but for the server's address, on a page of another origin that pushd
// allows: it shows the room and sends what is typed.
func TestReadmeExample(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, "## From a web page")
	if i < 0 {
		t.Fatal(`README has no "From a web page" section`)
	}
	start := strings.Index(doc[i:], "```html\n")
	end := strings.Index(doc[i+start:], "\n```\n")
	if start < 0 || end < 0 {
		t.Fatal(`README's "From a web page" has no html example`)
	}
	example := doc[i+start+len("```html\n") : i+start+end]

	pageSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<!doctype html><meta charset=utf-8>\n"+strings.ReplaceAll(example, "http://127.0.0.1:8080", r.URL.Query().Get("pushd")))
	}))
	t.Cleanup(pageSrv.Close)
	pu, _ := url.Parse(pageSrv.URL)
	srv := pushdtest.Start(t, server.Config{AllowOrigins: []string{pu.Host}}, pushdtest.Wrap(web.Handler))
	srv.Publish(t, "lobby", "bob", "hello, page")

	br := newBrowser(t, 800, 600)
	p := br.open(t, "example", pageSrv.URL+"/?pushd="+url.QueryEscape(srv.URL))
	p.waitFor("bob's message", `[...document.querySelectorAll("#log li")].some(li => li.textContent === "bob: hello, page") ? "" : document.getElementById("log").textContent`)
	p.must(`(() => { const f = document.getElementById("say"); f.text.value = "hi from the example"; f.requestSubmit(); })()`, nil)
	p.waitFor("its own message", `[...document.querySelectorAll("#log li")].some(li => li.textContent === "ann: hi from the example") ? "" : document.getElementById("log").textContent`)
	p.waitFor("the state in the title", `document.title === "connected ws" ? "" : document.title`)
}
