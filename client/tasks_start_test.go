package client_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/pushd/push/client"
	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// keyLog stands in front of a server, notes the Idempotency-Key of every
// start, and answers the first lose starts with a 503 after the server
// has taken them, as a proxy that lost the answer would.
type keyLog struct {
	mu   sync.Mutex
	keys []string
	lose int
}

func (l *keyLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/tasks" {
			h.ServeHTTP(w, r)
			return
		}
		l.mu.Lock()
		l.keys = append(l.keys, r.Header.Get("Idempotency-Key"))
		lose := l.lose > 0
		l.lose--
		l.mu.Unlock()
		if !lose {
			h.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
		w.Header().Set("Retry-After", "0")
		http.Error(w, "bad gateway", http.StatusBadGateway)
	})
}

func (l *keyLog) seen() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.keys...)
}

func TestStartTaskRetriesWithItsKey(t *testing.T) {
	log := &keyLog{lose: 2}
	s := pushdtest.Start(t, server.Config{}, pushdtest.Wrap(log.wrap))
	c, err := client.New(s.URL, client.WithUser("ann"))
	if err != nil {
		t.Fatal(err)
	}
	tk, err := c.StartTask(t.Context(), client.TaskSpec{Kind: "external", Name: "once", Room: "ops", CancelUnwatched: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if tk.Owner != "ann" || tk.Room != "ops" || tk.CancelUnwatched != "1m0s" {
		t.Errorf("started %+v; want ann's, in ops, cancelled after a minute unwatched", tk)
	}
	keys := log.seen()
	if len(keys) != 3 || len(keys[0]) != 32 || keys[1] != keys[0] || keys[2] != keys[0] {
		t.Errorf("the three tries had the keys %q; want one key of 128 bits in hex", keys)
	}
	var l protocol.TaskList
	s.Expect(t, http.MethodGet, "/v1/tasks", "", http.StatusOK, &l)
	if len(l.Tasks) != 1 || l.Tasks[0].ID != tk.ID {
		t.Errorf("the server has %d tasks; want one, %s", len(l.Tasks), tk.ID)
	}
	// A key of the caller's own, again: the same task.
	again, err := c.StartTask(t.Context(), client.TaskSpec{Kind: "external", Name: "mine", Key: "mine:1"})
	if err != nil {
		t.Fatal(err)
	}
	if same, err := c.StartTask(t.Context(), client.TaskSpec{Kind: "external", Name: "mine", Key: "mine:1"}); err != nil || same.ID != again.ID {
		t.Errorf("a start with the same key: %v, %v; want task %s", same, err, again.ID)
	}
	if _, err := c.StartTask(t.Context(), client.TaskSpec{Kind: "external", Key: "no spaces please"}); err == nil {
		t.Error("a start with a bad key went through")
	}
	if _, err := c.StartTask(t.Context(), client.TaskSpec{Kind: "external", Params: map[string]any{"room": "x"}}); err == nil {
		t.Error("a start with room in Params went through")
	}
}
