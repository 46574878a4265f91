package web_test

import (
	"flag"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/pushd/push/server"
)

// screenshots names a directory to keep the screenshots in: web-app.png
// (README's, docs/web-app.png), web-app-phone.png and
// web-app-reconnecting.png.
var screenshots = flag.String("screenshots", "", "keep the web app's screenshots in this directory")

// TestAppAtDesktopAndPhoneWidth fills a room and the task list and looks at
// the app at a desktop's width and a phone's: nothing is wider than the
// window; then pushd goes away and the page says it is reconnecting. With
// -screenshots DIR it keeps the screenshots there.
func TestAppAtDesktopAndPhoneWidth(t *testing.T) {
	srv := startApp(t, server.Config{})
	dir := *screenshots
	if dir == "" {
		dir = t.TempDir()
	}
	for _, m := range []struct{ user, text string }{
		{"ann", "Morning! Is the deploy still on for ten?"},
		{"bob", "Yes, the build is running now, you can follow it on the right."},
		{"bob", "Migrations went through on staging."},
		{"carol", "I'll watch the error rates once it's out."},
	} {
		srv.Publish(t, "lobby", m.user, m.text)
	}
	for _, task := range []string{
		`{"kind":"demo","name":"nightly backup","total":40,"interval":"1ms"}`,
		`{"kind":"demo","name":"resize images","total":400,"interval":"1ms","fail_at":130}`,
	} {
		srv.Expect(t, http.MethodPost, "/v1/tasks", task, http.StatusCreated, nil)
	}
	srv.Expect(t, http.MethodPost, "/v1/tasks", `{"kind":"demo","name":"build release","total":2000,"interval":"30ms"}`, http.StatusCreated, nil)

	b := newBrowser(t, 1200, 760)
	bob := b.open(t, "bob", appURL(srv.URL, "lobby", "bob", "auto"))
	bob.waitFor("bob connected", connectedOver("ws"))
	ann := b.open(t, "ann", appURL(srv.URL, "lobby", "ann", "sse"))
	ann.waitFor("ann connected", connectedOver("sse"))
	ann.waitFor("ann sees bob", presenceIs("ann", "bob"))
	ann.waitFor("the build under way", `(() => { const li = [...document.querySelectorAll("#tasks li")].find(li => li.querySelector(".task-name").textContent === "build release");
		return li && Number(li.dataset.percent) >= 2 ? "" : "not yet"; })()`)
	ann.waitFor("the failed task", taskIs("resize images", "failed", 32))
	ann.screenshot(filepath.Join(dir, "web-app.png"))
	ann.expect("fits the window", `document.documentElement.scrollWidth <= innerWidth ? "" : "page " + document.documentElement.scrollWidth + "px wide"`)

	phone := newPhone(t)
	p := phone.open(t, "phone", appURL(srv.URL, "lobby", "dan", "longpoll"))
	p.waitFor("dan connected", connectedOver("longpoll"))
	p.waitFor("dan sees everyone", presenceIs("ann", "bob", "dan"))
	p.screenshot(filepath.Join(dir, "web-app-phone.png"))
	p.expect("fits the phone", `document.documentElement.scrollWidth <= innerWidth ? "" : "page " + document.documentElement.scrollWidth + "px wide in a " + innerWidth + "px window"`)

	srv.Down(t)
	ann.waitFor("reconnecting", `document.getElementById("conn").dataset.state === "reconnecting" ? "" : "not yet"`)
	ann.waitFor("says so", `[...document.querySelectorAll("#messages li.sys.net")].some(li => /reconnecting/.test(li.textContent)) ? "" : "no note"`)
	ann.screenshot(filepath.Join(dir, "web-app-reconnecting.png"))
	srv.Up(t)
	ann.waitFor("back", connectedOver("sse"))
}
