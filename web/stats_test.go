package web_test

import (
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/server"
)

// streamRow is a condition on the stats page: the row of stream shows
// subscribers and present users.
func streamRow(name string, subscribers, present int) string {
	return `(() => { const tr = [...document.querySelectorAll("#streams tbody tr")].find(tr => tr.cells[0].textContent === ` + js(name) + `);
		if (!tr) return "no row " + ` + js(name) + ` + " in " + document.querySelector("#streams tbody").textContent;
		const got = [tr.cells[1].textContent, tr.cells[2].textContent].join(" ");
		return got === "` + strconv.Itoa(subscribers) + ` ` + strconv.Itoa(present) + `" ? "" : "row " + ` + js(name) + ` + ": " + got; })()`
}

// TestStatsPage opens /stats on each transport: the connections, a room's
// subscribers and present users, the subscriber that stopped reading
// among the furthest behind, a task's name shown as text, and a click on
// a room listing its subscribers.
func TestStatsPage(t *testing.T) {
	b := newBrowser(t, 1200, 900)
	for _, transport := range []string{"ws", "sse", "longpoll", "poll"} {
		t.Run(transport, func(t *testing.T) {
			srv := startApp(t, server.Config{WriteTimeout: time.Minute, MaxTextBytes: 70 << 10, MaxBodyBytes: 1 << 20})
			srv.Subscribe(t, pushdtest.WS, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{User: "ann"})
			srv.Subscribe(t, pushdtest.SSE, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{User: "bob"})
			stuck := pushdtest.StallSSE(t, srv.URL, pushdtest.RoomPath("slow")+"?user=stuck")
			big := strings.Repeat("0123456789abcdef", 4096)
			for range 100 {
				srv.Publish(t, "slow", "carol", big)
			}
			const hostile = `<img src=x onerror="window.owned=1">`
			srv.Expect(t, http.MethodPost, "/v1/tasks", `{"kind":"demo","name":`+js(hostile)+`,"total":1000,"interval":"1s"}`, http.StatusCreated, nil)

			p := b.open(t, "ops", srv.URL+"/stats?transport="+transport)
			p.waitFor("connected", connectedOver(transport))
			p.waitFor("the connections", `(() => { const got = document.getElementById("conns").textContent + " " + document.getElementById("conns-by").textContent;
				return got === "3 ws 1 · sse 2 · longpoll 0" ? "" : got; })()`)
			p.waitFor("the lobby", streamRow("lobby", 2, 2))
			p.waitFor("the stuck one behind", `(() => { const tr = document.querySelector("#lagging tbody tr");
				if (!tr) return "nobody behind";
				const c = [...tr.cells].map(td => td.textContent);
				return c[0] === "slow" && c[1] === "sse" && c[2] === `+js(stuck.LocalAddr().String())+` && c[3] === "stuck" && Number(c[4].replace(/,/g, "")) > 0 ? "" : c.join(" | "); })()`)
			p.waitFor("the task, as text", `(() => { const n = document.querySelector("#live-tasks .task-name");
				return n && n.textContent === `+js(hostile)+` ? "" : "task " + (n && n.textContent); })()`)
			p.expect("nothing parsed as markup", `document.querySelector("#live-tasks img") || window.owned ? "parsed as markup" : ""`)
			p.waitFor("the store and process", `(() => { const tr = document.querySelector("#nodes tbody tr");
				return tr && tr.cells[5].textContent === "memory store" && Number(tr.cells[7].textContent.replace(/,/g, "")) > 0 ? "" : "nodes " + (tr && tr.textContent); })()`)

			p.must(`document.querySelector('#streams tbody tr[data-stream="room/lobby"]').click()`, nil)
			p.waitFor("the lobby's subscribers", `(() => { const rows = [...document.querySelectorAll("#subscribers tbody tr")].map(tr => tr.cells[0].textContent + " " + tr.cells[2].textContent).sort();
				return !document.getElementById("room").hidden && JSON.stringify(rows) === JSON.stringify(["sse bob", "ws ann"]) ? "" : JSON.stringify(rows); })()`)
			p.must(`document.getElementById("filter").value = "slo"; document.getElementById("filter").dispatchEvent(new Event("input"))`, nil)
			p.waitFor("filtered", `(() => { const rows = [...document.querySelectorAll("#streams tbody tr")].map(tr => tr.dataset.stream);
				return JSON.stringify(rows) === '["room/slow"]' ? "" : JSON.stringify(rows); })()`)
		})
	}
}

// On a server with a secret, the page asks for a token; one without the
// admin right is refused with the server's reason, an admin's is taken
// from #token= and works.
func TestStatsPageNeedsAnAdminToken(t *testing.T) {
	srv := startApp(t, server.Config{AuthSecret: testSecret})
	b := newBrowser(t, 1000, 700)
	p := b.open(t, "anon", srv.URL+"/stats")
	p.waitFor("asked for a token", `(() => !document.getElementById("ask").hidden && /needs an admin token/.test(document.getElementById("ask-why").textContent) ? "" : "not asked")()`)

	user := token(t, "zoe", server.Claims{Rooms: []string{"*"}})
	p.must(`(() => { const f = document.getElementById("token-form"); f.token.value = `+js(user)+`; f.requestSubmit(); })()`, nil)
	p.waitFor("refused", `/not an admin/.test(document.getElementById("ask-why").textContent) ? "" : document.getElementById("ask-why").textContent`)

	admin := token(t, "root", server.Claims{Admin: true})
	a := b.open(t, "root", srv.URL+"/stats#token="+admin)
	a.waitFor("connected", connectedOver("ws"))
	a.expect("the token gone from the address bar", `location.hash === "" ? "" : location.href`)
	a.waitFor("the stats", `document.getElementById("nodes-count").textContent === "1 node" ? "" : "no stats yet"`)
}

// TestStatsPageAtDesktopAndPhoneWidth looks at the stats page of a busy
// server at a desktop's width and a phone's: nothing is wider than the
// window. With -screenshots DIR it keeps stats.png and stats-phone.png.
func TestStatsPageAtDesktopAndPhoneWidth(t *testing.T) {
	srv := startApp(t, server.Config{WriteTimeout: time.Minute, MaxTextBytes: 70 << 10, MaxBodyBytes: 1 << 20})
	dir := *screenshots
	if dir == "" {
		dir = t.TempDir()
	}
	for i, room := range []string{"lobby", "lobby", "lobby", "dev", "dev", "support"} {
		kind := pushdtest.Transports[i%len(pushdtest.Transports)]
		if kind == pushdtest.LongPoll {
			kind = pushdtest.SSE
		}
		srv.Subscribe(t, kind, pushdtest.RoomPath(room), pushdtest.SubOptions{User: "user" + strconv.Itoa(i)})
	}
	pushdtest.StallSSE(t, srv.URL, pushdtest.RoomPath("exports")+"?user=stalled-reader")
	big := strings.Repeat("0123456789abcdef", 4096)
	for range 100 {
		srv.Publish(t, "exports", "carol", big)
	}
	srv.Expect(t, http.MethodPost, "/v1/tasks", `{"kind":"demo","name":"nightly backup","total":1000,"interval":"1s"}`, http.StatusCreated, nil)
	srv.Expect(t, http.MethodPost, "/v1/tasks", `{"kind":"demo","name":"reindex search","total":400,"interval":"20ms"}`, http.StatusCreated, nil)
	done := make(chan struct{})
	go func() { // a little traffic, for the sparklines
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
				srv.Publish(pushdtest.GoTB{TB: t}, "lobby", "ann", "tick "+strconv.Itoa(i))
			}
		}
	}()
	defer close(done)

	b := newBrowser(t, 1200, 900)
	p := b.open(t, "ops", srv.URL+"/stats")
	p.waitFor("connected", connectedOver("ws"))
	p.waitFor("the stalled reader", `document.querySelector("#lagging tbody tr") ? "" : "nobody behind yet"`)
	p.waitFor("a few snapshots", `document.querySelector("#spark-out polyline")?.getAttribute("points").split(" ").length >= 4 ? "" : "not yet"`)
	p.must(`document.querySelector('#streams tbody tr[data-stream="room/lobby"]').click()`, nil)
	p.waitFor("the lobby's subscribers", `document.querySelectorAll("#subscribers tbody tr").length === 3 ? "" : "not yet"`)
	p.screenshot(filepath.Join(dir, "stats.png"))
	p.expect("fits the window", `document.documentElement.scrollWidth <= innerWidth ? "" : "page " + document.documentElement.scrollWidth + "px wide"`)

	phone := newPhone(t)
	ph := phone.open(t, "phone", srv.URL+"/stats")
	ph.waitFor("connected", connectedOver("ws"))
	ph.waitFor("the streams", streamRow("lobby", 3, 3))
	ph.screenshot(filepath.Join(dir, "stats-phone.png"))
	ph.expect("fits the phone", `document.documentElement.scrollWidth <= innerWidth ? "" : "page " + document.documentElement.scrollWidth + "px wide in a " + innerWidth + "px window"`)
}
