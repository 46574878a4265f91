package web_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"

	"github.com/pushd/push/protocol"
)

// followTaskJS starts a subscription of the page to one task's stream over
// transport, after since (null: the live end); what it gets lands in
// tevents and tstates.
func followTaskJS(transport, id, since string) string {
	s := "null"
	if since != "" {
		s = js(since)
	}
	return `(() => {
		const q = new URLSearchParams(location.search);
		window.tevents = [];
		window.tstates = [];
		window.tclient = new pushd.Client(q.get("pushd"), { token: q.get("token"), transport: ` + js(transport) + `, minBackoff: 50, maxBackoff: 1000 });
		window.tsub = tclient.subscribeTask(` + js(id) + `, {
			since: ` + s + `,
			onEvent: (ev) => tevents.push(ev),
			onState: (s) => tstates.push({ state: s.state, error: s.error ? s.error.message : null }),
		});
	})()`
}

// taskEndedJS is a condition on the page: the task subscription has ended
// by itself, closed without an error and never reconnecting, with want
// events, the last of them in state last (if any), and nothing left
// running.
func taskEndedJS(want int, last protocol.TaskState) string {
	return `(() => {
		const s = tstates[tstates.length - 1];
		if (!s || s.state !== "closed") return "states " + JSON.stringify(tstates);
		if (s.error !== null) return "closed with " + s.error;
		if (tstates.some(x => x.state === "reconnecting")) return "it reconnected: " + JSON.stringify(tstates);
		if (tevents.length !== ` + strconv.Itoa(want) + `) return "events " + JSON.stringify(tevents);
		if (tevents.length > 0 && tevents[tevents.length - 1].task.state !== ` + js(string(last)) + `) return "last " + JSON.stringify(tevents[tevents.length - 1]);
		return live.timers.size === 0 && live.fetches === 0 && live.sockets === 0 ? "" :
			"left: " + live.timers.size + " timers, " + live.fetches + " fetches, " + live.sockets + " sockets"; })()`
}

// TestClientTaskStreamEnds: pushd.js's subscribeTask ends by itself after
// the task's final event, on every transport, without reconnecting; a task
// that has ended gives its final event from the live end, and nothing
// after it.
func TestClientTaskStreamEnds(t *testing.T) {
	onEveryTransport(t, func(t *testing.T, transport string, co *crossOrigin, p *page) {
		auth := []string{"Authorization", "Bearer " + co.token(t, "ann")}
		var task protocol.Task
		a := co.srv.Request(t, context.Background(), http.MethodPost, "/v1/tasks", `{"kind":"external","total":2}`, auth...)
		if a.Status != http.StatusCreated {
			t.Fatalf("start a task: %d %s", a.Status, a.Body)
		}
		a.JSON(t, &task)
		report := func(body string) {
			t.Helper()
			if a := co.srv.Request(t, context.Background(), http.MethodPost, "/v1/tasks/"+task.ID+"/progress", body, auth...); a.Status != http.StatusOK {
				t.Fatalf("report %s: %d %s", body, a.Status, a.Body)
			}
		}

		p.must(followTaskJS(transport, task.ID, ""), nil)
		p.waitFor("connected", `tstates.some(s => s.state === "connected") ? "" : JSON.stringify(tstates)`)
		report(`{"done":1}`)
		report(`{"state":"succeeded"}`)
		p.waitFor("the end after the final event", `(() => {
			const s = tstates[tstates.length - 1];
			return s && s.state === "closed" ? "" : JSON.stringify(tstates); })()`)
		var n int
		p.must(`tevents.length`, &n)
		p.expect("the end, as it should be", taskEndedJS(n, protocol.TaskSucceeded))
		var final string
		p.must(`(() => { const e = tevents[tevents.length - 1]; return e.epoch + ":" + e.seq; })()`, &final)

		p.must(followTaskJS(transport, task.ID, ""), nil)
		p.waitFor("the final event, then the end", taskEndedJS(1, protocol.TaskSucceeded))
		p.must(followTaskJS(transport, task.ID, final), nil)
		p.waitFor("the end alone", taskEndedJS(0, ""))
	})
}
