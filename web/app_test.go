package web_test

import (
	"net/http"
	"testing"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// appTransports are the transports the app is tried on.
var appTransports = []string{"ws", "sse", "longpoll", "poll"}

// TestAppOnEveryTransport opens the web app in a room over each transport:
// a message posted with curl appears, what the page sends appears in the
// room (as text, never as markup), presence shows both users, a demo task
// started from the page runs to 100 %, and a task cancelled from the page
// ends cancelled.
func TestAppOnEveryTransport(t *testing.T) {
	b := newBrowser(t, 1000, 700)
	for _, transport := range appTransports {
		t.Run(transport, func(t *testing.T) {
			srv := startApp(t, server.Config{})
			room := "app-" + transport
			ann := b.open(t, "ann", appURL(srv.URL, room, "ann", transport))
			ann.waitFor("connected", connectedOver(transport))
			ann.must(`document.getElementById("start-task").click()`, nil)

			srv.Publish(t, room, "carol", "posted with curl")
			ann.waitFor("curl's message", shows("posted with curl"))

			const typed = `<img src=x onerror="window.owned=1"> & <b>bold</b>`
			sendFromPage(ann, typed)
			ann.waitFor("the page's message", shows(typed))
			var found bool
			for _, ev := range srv.History(t, pushdtest.RoomPath(room)) {
				found = found || (ev.Type == protocol.TypeMessage && ev.User == "ann" && ev.Text == typed)
			}
			if !found {
				t.Fatalf("the room has no message %q from ann", typed)
			}
			ann.expect("shown as text", `document.querySelector("#messages .text img, #messages .text b") || window.owned ? "parsed as markup" : ""`)

			bob := b.open(t, "bob", appURL(srv.URL, room, "bob", transport))
			bob.waitFor("connected", connectedOver(transport))
			ann.waitFor("ann sees both", presenceIs("ann", "bob"))
			bob.waitFor("bob sees both", presenceIs("ann", "bob"))
			bob.waitFor("bob sees the history", shows(typed))

			ann.waitFor("the demo task done", taskIs("demo by ann", "succeeded", 100))
			srv.Expect(t, http.MethodPost, "/v1/tasks", `{"kind":"demo","name":"long one","total":1000,"interval":"1s"}`, http.StatusCreated, nil)
			ann.waitFor("the long one shown", `(() => { const li = document.querySelector("#tasks li[data-state=running] .cancel:not([hidden])");
				return li ? "" : "no running task to cancel"; })()`)
			ann.must(`document.querySelector("#tasks li[data-state=running] .cancel").click()`, nil)
			ann.waitFor("the long one cancelled", taskIs("long one", "cancelled", 0))
			bob.waitFor("bob sees it cancelled", taskIs("long one", "cancelled", 0))
		})
	}
}

// TestAppAsksForAToken: on a server with a secret the app asks for a token,
// takes one from #token= (and drops it from the address bar), and acts as
// the token's user.
func TestAppAsksForAToken(t *testing.T) {
	srv := startApp(t, server.Config{AuthSecret: testSecret})
	b := newBrowser(t, 1000, 700)
	p := b.open(t, "anon", appURL(srv.URL, "lobby", "ann", "auto"))
	p.waitFor("asked for a token", `(() => !document.getElementById("join").hidden && !document.getElementById("token-label").hidden &&
		/needs a token/.test(document.getElementById("join-error").textContent) ? "" : "not asked")()`)

	tok := token(t, "zoe", server.Claims{Rooms: []string{"lobby"}, Publish: true, Tasks: true})
	z := b.open(t, "zoe", srv.URL+"/?room=lobby#token="+tok)
	z.waitFor("connected", connectedOver("ws"))
	z.expect("the token gone from the address bar", `location.hash === "" ? "" : location.href`)
	z.expect("acting as the token's user", `document.getElementById("user-name").textContent === "zoe" ? "" : document.getElementById("user-name").textContent`)
	sendFromPage(z, "hello with a token")
	z.waitFor("sent", shows("hello with a token"))
	z.waitFor("present", presenceIs("zoe"))
}
