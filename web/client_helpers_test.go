package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
	"github.com/pushd/push/web"
)

// harnessPage is a page of another origin than pushd's that imports
// pushd.js from pushd, as a web app elsewhere would. Before the import it
// wraps setTimeout, fetch and WebSocket to count what is live, so a test
// can tell that close() left nothing behind. start(transport, options)
// makes a client and follows the room; what it gets lands in events and
// states.
const harnessPage = `<!doctype html>
<meta charset="utf-8">
<title>pushd.js harness</title>
<script type="module">
const live = { timers: new Set(), fetches: 0, sockets: 0 };
window.live = live;
const realSetTimeout = window.setTimeout, realClearTimeout = window.clearTimeout;
window.setTimeout = (fn, ms, ...args) => {
  const id = realSetTimeout(() => { live.timers.delete(id); fn(...args); }, ms);
  live.timers.add(id);
  return id;
};
window.clearTimeout = (id) => { live.timers.delete(id); realClearTimeout(id); };
const realFetch = window.fetch;
window.fetch = async (...args) => {
  live.fetches++;
  try { return await realFetch(...args); } finally { live.fetches--; }
};
const RealWebSocket = window.WebSocket;
window.WebSocket = class extends RealWebSocket {
  constructor(...args) {
    super(...args);
    live.sockets++;
    this.addEventListener("close", () => { live.sockets--; });
  }
};

const q = new URLSearchParams(location.search);
const base = q.get("pushd");
const pushd = await import(base + "/pushd.js");
window.pushd = pushd;
window.start = (transport, options = {}) => {
  window.events = [];
  window.states = [];
  window.client = new pushd.Client(base, {
    token: q.get("token") || undefined, transport, minBackoff: 50, maxBackoff: 1000, ...options });
  window.sub = client.subscribeRoom(q.get("room"), {
    since: options.since,
    onEvent: (ev) => events.push(ev),
    onState: (s) => states.push({ state: s.state, transport: s.transport, error: s.error ? s.error.message : null, retryIn: s.retryIn }),
  });
};
// errorOf runs a promise and gives what it threw, as plain data.
window.errorOf = (p) => p.then(() => null, (e) => ({ name: e.name, status: e.status, code: e.code, message: e.message, temporary: e.temporary }));
window.ready = true;
</script>`

// crossOrigin is pushd with the web handler in front, and a harness page
// on another origin (another port) that pushd allows.
type crossOrigin struct {
	srv  *pushdtest.Server
	page *httptest.Server

	mu   sync.Mutex
	keys []keyed // Idempotency-Key of every publish that reached pushd, in order
}

// keyed is one publish request as it reached pushd.
type keyed struct {
	key string
	at  time.Time
}

// startCrossOrigin starts the page's server and pushd with an auth secret,
// allowing the page's origin; network, if given, stands between the page
// and pushd (a proxy that refuses some transports).
func startCrossOrigin(t *testing.T, cfg server.Config, network func(http.Handler) http.Handler) *crossOrigin {
	t.Helper()
	co := &crossOrigin{}
	co.page = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, harnessPage)
	}))
	t.Cleanup(co.page.Close)
	pu, _ := url.Parse(co.page.URL)
	cfg.AuthSecret = testSecret
	cfg.AllowOrigins = []string{pu.Host}
	co.srv = pushdtest.Start(t, cfg, pushdtest.LogLevel(slog.LevelWarn), pushdtest.Wrap(func(api http.Handler) http.Handler {
		h := web.Handler(api)
		if network != nil {
			h = network(h)
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/messages") {
				co.mu.Lock()
				co.keys = append(co.keys, keyed{key: r.Header.Get("Idempotency-Key"), at: time.Now()})
				co.mu.Unlock()
			}
			h.ServeHTTP(w, r)
		})
	}))
	return co
}

// token mints a token for user on rooms r*, allowed to publish and run
// tasks.
func (co *crossOrigin) token(t *testing.T, user string) string {
	t.Helper()
	return token(t, user, server.Claims{Rooms: []string{"r*"}, Publish: true, Tasks: true})
}

// publish posts text to room as user, with a token, as curl would.
func (co *crossOrigin) publish(t *testing.T, room, user, text string) protocol.Event {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"text": text})
	a := co.srv.Request(t, context.Background(), http.MethodPost, "/v1/rooms/"+room+"/messages", string(body),
		"Authorization", "Bearer "+co.token(t, user))
	if a.Status != http.StatusCreated {
		t.Fatalf("publish %q: %d %s", text, a.Status, a.Body)
	}
	var ev protocol.Event
	a.JSON(t, &ev)
	return ev
}

// onEveryTransport runs test once for each of pushd.js's transports, in a
// subtest with a pushd of its own served cross-origin (startCrossOrigin)
// and a page of ann's in room r1 open in one browser.
func onEveryTransport(t *testing.T, test func(t *testing.T, transport string, co *crossOrigin, p *page)) {
	t.Helper()
	b := newBrowser(t, 800, 600)
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			co := startCrossOrigin(t, server.Config{}, nil)
			test(t, transport, co, co.open(t, b, "r1", "ann"))
		})
	}
}

// open opens the harness page for user in room, with a token, and waits
// until pushd.js is imported.
func (co *crossOrigin) open(t *testing.T, b *browser, room, user string) *page {
	t.Helper()
	q := url.Values{"pushd": {co.srv.URL}, "room": {room}, "token": {co.token(t, user)}}
	p := b.open(t, user, co.page.URL+"/?"+q.Encode())
	p.waitFor("pushd.js imported", `window.ready ? "" : "not yet"`)
	return p
}

// publishKeys returns the Idempotency-Keys of the publishes that reached
// pushd, in order.
func (co *crossOrigin) publishKeys() []keyed {
	co.mu.Lock()
	defer co.mu.Unlock()
	return append([]keyed(nil), co.keys...)
}

// harnessConnected is a condition on the harness: the last state is
// connected over transport.
func harnessConnected(transport string) string {
	return `(() => { const s = states[states.length - 1];
		return s && s.state === "connected" && s.transport === ` + js(transport) + ` ? "" : "states " + JSON.stringify(states); })()`
}

// harnessMessages gives the texts of the message events received.
const harnessMessages = `events.filter(e => e.type === "message").map(e => e.text)`

// harnessGot is a condition on the harness: the messages received are
// texts, in order, and no event came twice or out of order within an
// epoch.
func harnessGot(texts ...string) string {
	want, _ := json.Marshal(texts)
	return `(() => {
		for (let i = 1; i < events.length; i++) {
			const a = events[i - 1], b = events[i];
			if (b.type !== "reset" && a.epoch === b.epoch && b.seq !== a.seq + 1) return "seq " + b.seq + " after " + a.seq + ": " + JSON.stringify(events.map(e => [e.type, e.seq]));
		}
		const got = JSON.stringify(` + harnessMessages + `);
		return got === ` + js(string(want)) + ` ? "" : "messages " + got; })()`
}

// closedClean is a condition on the harness after client.close(): the
// state is closed, and no timer, fetch or WebSocket is left.
const closedClean = `(() => {
	const s = states[states.length - 1];
	if (!s || s.state !== "closed") return "last state " + JSON.stringify(s);
	if (sub.state !== "closed") return "sub.state " + sub.state;
	return live.timers.size === 0 && live.fetches === 0 && live.sockets === 0 ? "" :
		"left: " + live.timers.size + " timers, " + live.fetches + " fetches, " + live.sockets + " sockets"; })()`
