package web_test

import (
	"fmt"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/server"
	"github.com/pushd/push/web"
)

// startApp runs pushd in-process with the web app in front, as pushd serve
// does.
func startApp(t *testing.T, cfg server.Config) *pushdtest.Server {
	t.Helper()
	return pushdtest.Start(t, cfg, pushdtest.Wrap(web.Handler), pushdtest.LogLevel(slog.LevelWarn))
}

// testSecret signs the tokens of the tests whose server needs them.
var testSecret = []byte("a secret for the browser tests, 32+")

// token mints a token of testSecret for user with claims, valid for an
// hour.
func token(t *testing.T, user string, claims server.Claims) string {
	t.Helper()
	return pushdtest.Token(t, testSecret, user, claims, time.Hour)
}

// appURL is the app's address for user in room over transport.
func appURL(base, room, user, transport string) string {
	return fmt.Sprintf("%s/?room=%s&user=%s&transport=%s", base, room, user, transport)
}

// js quotes s as a JavaScript string.
func js(s string) string { return strconv.Quote(s) }

// connectedOver is a condition on the app: live over transport.
func connectedOver(transport string) string {
	return `(() => { const c = document.getElementById("conn");
		return c.dataset.state === "connected" && c.dataset.transport === ` + js(transport) + ` ? "" :
			"state " + c.dataset.state + " over " + c.dataset.transport; })()`
}

// appMessages is an expression that gives the app's messages as
// [[seq, user, text], ...].
const appMessages = `[...document.querySelectorAll('#messages li[data-type="message"]')].map(li => [
	Number(li.dataset.seq),
	li.dataset.user,
	li.querySelector(".text").textContent])`

// shows is a condition on the app: a message with text is on the page.
func shows(text string) string {
	return `(() => ` + appMessages + `.some(m => m[2] === ` + js(text) + `) ? "" : "not shown: " + JSON.stringify(` + appMessages + `.map(m => m[2])))()`
}

// presenceIs is a condition on the app: the presence list is users.
func presenceIs(users ...string) string {
	want := "["
	for i, u := range users {
		if i > 0 {
			want += ","
		}
		want += js(u)
	}
	want += "]"
	return `(() => { const got = [...document.querySelectorAll("#presence li")].map(li => li.dataset.user);
		return JSON.stringify(got) === JSON.stringify(` + want + `) ? "" : "presence " + JSON.stringify(got); })()`
}

// taskIs is a condition on the app: a task named name is in state, at
// percent (rounded), its bar as wide.
func taskIs(name, state string, percent int) string {
	return `(() => { const li = [...document.querySelectorAll("#tasks li")].find(li => li.querySelector(".task-name").textContent === ` + js(name) + `);
		if (!li) return "no task " + ` + js(name) + `;
		const bar = li.querySelector(".fill").style.width;
		return li.dataset.state === ` + js(state) + ` && Math.round(li.dataset.percent) === ` + strconv.Itoa(percent) + ` && bar === li.dataset.percent + "%" ? "" :
			"task " + li.dataset.state + " at " + li.dataset.percent + "%, bar " + bar; })()`
}

// sendFromPage types text into the app's composer and sends it.
func sendFromPage(p *page, text string) {
	p.t.Helper()
	p.must(`(() => { const i = document.getElementById("text"); i.value = `+js(text)+`;
		document.getElementById("composer").requestSubmit(); })()`, nil)
}
