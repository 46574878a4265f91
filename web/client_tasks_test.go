package web_test

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// TestClientStartTaskOnceWithItsKey: startTask sends an Idempotency-Key
// and, when the answer is lost (a 502 after pushd took the start), sends
// the start again with the same key: one task. A key of the caller's own
// starts once too.
func TestClientStartTaskOnceWithItsKey(t *testing.T) {
	var mu sync.Mutex
	var keys []string
	lose := 1
	co := startCrossOrigin(t, server.Config{}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || r.URL.Path != "/v1/tasks" {
				h.ServeHTTP(w, r)
				return
			}
			mu.Lock()
			keys = append(keys, r.Header.Get("Idempotency-Key"))
			lost := lose > 0
			lose--
			mu.Unlock()
			if !lost {
				h.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			for k, v := range rec.Header() {
				if strings.HasPrefix(k, "Access-Control-") || k == "Vary" {
					w.Header()[k] = v
				}
			}
			w.WriteHeader(http.StatusBadGateway)
		})
	})
	b := newBrowser(t, 800, 600)
	p := co.open(t, b, "r5", "ann")
	p.must(`start("sse", {since: "0"})`, nil)
	var tk protocol.Task
	p.must(`client.startTask({kind: "external", name: "once", room: "r5", cancel_unwatched: "1m"})`, &tk)
	if tk.Owner != "ann" || tk.Room != "r5" || tk.CancelUnwatched != "1m0s" {
		t.Errorf("started %+v; want ann's, in r5, cancelled after a minute unwatched", tk)
	}
	mu.Lock()
	got := append([]string(nil), keys...)
	mu.Unlock()
	if len(got) != 2 || !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(got[0]) || got[1] != got[0] {
		t.Errorf("the start's tries came with the keys %q; want two tries with one key of 128 random bits in hex", got)
	}
	var l protocol.TaskList
	a := co.srv.Request(t, t.Context(), http.MethodGet, "/v1/tasks", "", "Authorization", "Bearer "+co.token(t, "ann"))
	if a.JSON(t, &l); len(l.Tasks) != 1 || l.Tasks[0].ID != tk.ID {
		t.Errorf("pushd has %d tasks; want one, %s", len(l.Tasks), tk.ID)
	}
	var same bool
	p.must(`Promise.all([1, 2].map(() => client.startTask({kind: "external", name: "mine"}, {key: "mine:1"}))).then(([a, b]) => a.id === b.id)`, &same)
	if !same {
		t.Error("two starts with one key of the caller's own made two tasks")
	}
	p.must(`client.close()`, nil)
	p.waitFor("nothing left after close()", closedClean)
}
