package web_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pushd/push/server"
)

// transports are the ones a client may be told to use, auto last.
var transports = []string{"ws", "sse", "longpoll", "poll", "auto"}

// metricTransport is the transport a connection shows under in /metrics,
// or "" for short polls, which hold no connection.
func metricTransport(transport string) string {
	switch transport {
	case "auto":
		return "ws"
	case "poll":
		return ""
	}
	return transport
}

// TestClientCrossOrigin runs pushd.js, imported by a page of another origin
// with a token, over every transport: events arrive once and in order
// across a dropped connection, and a restart that loses the history comes
// as a reset; publish, presence and tasks work and their errors carry the
// server's status and code; close() leaves no timer, request or socket, and
// the server sees the connection go.
func TestClientCrossOrigin(t *testing.T) {
	onEveryTransport(t, func(t *testing.T, transport string, co *crossOrigin, p *page) {
		want := transport
		if transport == "auto" {
			want = "ws"
		}
		co.publish(t, "r1", "bob", "before")
		p.must(`start(`+js(transport)+`, {since: "0"})`, nil)
		p.waitFor("connected", harnessConnected(want))
		co.publish(t, "r1", "bob", "one")
		var ev struct {
			Seq  int    `json:"seq"`
			User string `json:"user"`
		}
		p.must(`client.publish("r1", "two")`, &ev)
		if ev.User != "ann" || ev.Seq == 0 {
			t.Fatalf("publish from the page gave %+v; want an event of ann's", ev)
		}
		p.waitFor("the messages", harnessGot("before", "one", "two"))
		var users []string
		p.must(`client.presence("r1")`, &users)
		if len(users) != 1 || users[0] != "ann" {
			t.Fatalf("presence %v; want [ann]", users)
		}

		co.srv.DropConns()
		co.srv.Client.CloseIdleConnections() // the test's own were cut too
		co.publish(t, "r1", "bob", "three")
		p.waitFor("resumed after the drop", harnessGot("before", "one", "two", "three"))
		p.waitFor("reconnected", harnessConnected(want))
		if transport != "longpoll" && transport != "poll" {
			// A poll cut on a kept-alive connection before its answer
			// is sent again by the browser itself, unseen.
			p.expect("said it was reconnecting", `states.some(s => s.state === "reconnecting") ? "" : JSON.stringify(states)`)
		}

		co.srv.Restart(t) // the memory store: a new epoch
		co.publish(t, "r1", "bob", "four")
		p.waitFor("after the restart", harnessGot("before", "one", "two", "three", "four"))
		p.waitFor("the reset", `(() => { const i = events.findIndex(e => e.type === "reset");
			return i >= 0 && events[i].reason === "epoch_changed" && events.slice(i + 1).some(e => e.text === "four") ? "" : "no reset before four"; })()`)

		checkErrors(t, p)
		checkTasks(t, p)

		p.must(`client.close()`, nil)
		p.waitFor("nothing left after close()", closedClean)
		if mt := metricTransport(transport); mt != "" {
			co.srv.WaitConnections(t, mt, 0)
		}
		checkKeys(t, co.publishKeys(), 3) // "two" and the two refused in checkErrors
	})
}

// checkKeys: pushd.js sent n publishes, each with an Idempotency-Key of
// 128 random bits in hex, a new one each (the test's own publishes carry
// none).
func checkKeys(t *testing.T, keys []keyed, n int) {
	t.Helper()
	seen := map[string]bool{}
	for _, k := range keys {
		if k.key == "" {
			continue
		}
		if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(k.key) {
			t.Errorf("a publish came with Idempotency-Key %q; want 128 random bits in hex", k.key)
		}
		seen[k.key] = true
	}
	if len(seen) != n {
		t.Errorf("%d publishes with a key of their own; want %d", len(seen), n)
	}
}

// checkErrors: failed requests throw PushdErrors with the server's status,
// code and message.
func checkErrors(t *testing.T, p *page) {
	t.Helper()
	type pushdErr struct {
		Name      string `json:"name"`
		Status    int    `json:"status"`
		Code      string `json:"code"`
		Message   string `json:"message"`
		Temporary bool   `json:"temporary"`
	}
	for _, c := range []struct {
		call   string
		status int
		code   string
	}{
		{`client.publish("r1", "   ")`, 400, "empty_text"},
		{`client.publish("elsewhere", "hi")`, 403, "forbidden"},
		{`client.task("tnosuchtask")`, 404, "not_found"},
		{`client.startTask({kind: "demo", total: -5})`, 400, "invalid_param"},
	} {
		var e *pushdErr
		p.must(`errorOf(`+c.call+`)`, &e)
		if e == nil || e.Name != "PushdError" || e.Status != c.status || e.Code != c.code || e.Message == "" || e.Temporary {
			t.Errorf("%s threw %+v; want a PushdError %d %s with a message", c.call, e, c.status, c.code)
		}
	}
}

// checkTasks: a task started from the page runs to the end, shows in the
// list, and one cancelled ends cancelled.
func checkTasks(t *testing.T, p *page) {
	t.Helper()
	p.must(`(async () => {
		const quick = await client.startTask({name: "quick", total: 3, interval: "1ms"});
		const slow = await client.startTask({name: "slow", total: 1000, interval: "1s"});
		const list = await client.tasks();
		if (!list.some(x => x.id === quick.id) || !list.some(x => x.id === slow.id)) throw new Error("tasks() misses one: " + JSON.stringify(list));
		const c = await client.cancelTask(slow.id);
		if (c.id !== slow.id) throw new Error("cancelTask gave " + JSON.stringify(c));
		window.taskIDs = [quick.id, slow.id];
	})()`, nil)
	p.waitFor("tasks at their end", `Promise.all(taskIDs.map(id => client.task(id))).then(([q, s]) =>
		q.state === "succeeded" && q.percent === 100 && s.state === "cancelled" ? "" : q.state + " " + q.percent + ", " + s.state)`)
}

// refuseWebSocket is a network that answers WebSocket upgrades with a 403
// of its own, as a proxy that does not pass them.
func refuseWebSocket(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "no websockets here", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// onlyShortPolls is a network that refuses WebSocket and event streams and
// cuts every request that would wait (a long poll) with a 504 of its own.
func onlyShortPolls(next http.Handler) http.Handler {
	return refuseWebSocket(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
			http.Error(w, "no event streams here", http.StatusForbidden)
			return
		}
		if wait, err := time.ParseDuration(r.URL.Query().Get("wait")); err == nil && wait > 0 {
			http.Error(w, "gateway timeout", http.StatusGatewayTimeout)
			return
		}
		next.ServeHTTP(w, r)
	}))
}

// TestClientFallsBackWhereTheNetworkRefuses: auto mode goes on with the
// next transport when something on the way refuses one (its refusals come
// without CORS headers, so the page sees no answer at all), and events
// arrive once and in order across the change.
func TestClientFallsBackWhereTheNetworkRefuses(t *testing.T) {
	b := newBrowser(t, 800, 600)
	for _, c := range []struct {
		name    string
		network func(http.Handler) http.Handler
		want    string
	}{
		{"websocket refused", refuseWebSocket, "sse"},
		{"only short polls", onlyShortPolls, "poll"},
	} {
		t.Run(c.name, func(t *testing.T) {
			co := startCrossOrigin(t, server.Config{}, c.network)
			p := co.open(t, b, "r2", "ann")
			co.publish(t, "r2", "bob", "one")
			p.must(`start("auto", {since: "0"})`, nil)
			p.waitFor("fallen back to "+c.want, harnessConnected(c.want))
			co.publish(t, "r2", "bob", "two")
			p.must(`client.publish("r2", "three")`, nil)
			p.waitFor("the messages", harnessGot("one", "two", "three"))
			p.expect("tried ws first", `states[0].state === "connecting" && states[0].transport === "ws" ? "" : JSON.stringify(states)`)
			p.must(`client.close()`, nil)
			p.waitFor("nothing left after close()", closedClean)
			if mt := metricTransport(c.want); mt != "" {
				co.srv.WaitConnections(t, mt, 0)
			}
		})
	}
}

// TestClientPublishRetriesWithTheSameKey: a publish refused for a passing
// reason (here pushd's rate limit, 429 with Retry-After) is sent again
// after the Retry-After the page could read, with the same Idempotency-Key.
func TestClientPublishRetriesWithTheSameKey(t *testing.T) {
	co := startCrossOrigin(t, server.Config{Limits: server.Limits{PublishRate: 1, PublishBurst: 1}}, nil)
	b := newBrowser(t, 800, 600)
	p := co.open(t, b, "r3", "ann")
	p.must(`start("sse", {since: "0"})`, nil)
	p.must(`client.publish("r3", "first").then(() => client.publish("r3", "second"))`, nil)
	p.waitFor("both", harnessGot("first", "second"))
	keys := co.publishKeys()
	if len(keys) != 3 {
		t.Fatalf("%d publish requests reached pushd; want 3 (one refused with 429, then sent again)", len(keys))
	}
	checkKeys(t, keys, 2)
	if keys[1].key != keys[2].key {
		t.Fatalf("the retry came with key %s, the refused try with %s; want the same", keys[2].key, keys[1].key)
	}
	if gap := keys[2].at.Sub(keys[1].at); gap < 900*time.Millisecond {
		t.Fatalf("retried %v after a 429 with Retry-After: 1; want at least 1 s", gap)
	}
	p.must(`client.close()`, nil)
	p.waitFor("nothing left after close()", closedClean)
}

// TestClientNoticesASilentStream: an event stream on which nothing, not
// even a heartbeat, arrives for idleTimeout is dropped and resumed; a
// quiet WebSocket is checked with a short poll and kept, as the stream has
// nothing new.
func TestClientNoticesASilentStream(t *testing.T) {
	co := startCrossOrigin(t, server.Config{Heartbeat: time.Hour}, nil)
	b := newBrowser(t, 800, 600)
	p := co.open(t, b, "r4", "ann")
	p.must(`start("sse", {since: "0", idleTimeout: 300})`, nil)
	p.waitFor("dropped as silent", `states.some(s => s.state === "reconnecting" && /nothing from the server for 300 ms/.test(s.error)) ? "" : JSON.stringify(states)`)
	co.publish(t, "r4", "bob", "still here")
	p.waitFor("the message", harnessGot("still here"))
	p.must(`client.close()`, nil)
	p.waitFor("nothing left after close()", closedClean)

	p.must(`start("ws", {since: "0", idleTimeout: 300})`, nil)
	p.waitFor("connected", harnessConnected("ws"))
	co.publish(t, "r4", "bob", "quiet")
	p.waitFor("the message", harnessGot("still here", "quiet"))
	// Checked at least once: a short poll went out, found nothing new, and
	// the WebSocket stayed.
	p.waitFor("checked", `performance.getEntriesByType("resource").filter(e => /wait=0ms/.test(e.name) && /since=/.test(e.name)).length >= 2 ? "" : "no check yet"`)
	p.expect("connected once", `states.filter(s => s.state === "connected").length === 1 ? "" : JSON.stringify(states)`)
	p.must(`client.close()`, nil)
	p.waitFor("nothing left after close()", closedClean)
}
