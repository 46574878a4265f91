package server

import (
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pushd/push/protocol"
)

// taskWatchers counts this server's subscriptions to tasks, for tasks
// started with cancel_unwatched (see tasks.Stream.LastWatched): those to
// one task's events, by task, and those to the whole tasks stream, by
// what their subscriber may see. It keeps when the last of each closed,
// so that a task's owner can tell how long nobody has watched it. Its
// methods are safe for concurrent use.
type taskWatchers struct {
	mu  sync.Mutex
	one map[string]*watchCount    // by task id
	all map[viewerKey]*watchCount // by what the subscriber may see
	n   int                       // entries after the last prune
}

// watchCount is how many subscriptions of a kind are open, and when the
// last one closed (or, for a long poll, stops counting).
type watchCount struct {
	n      int
	left   time.Time
	viewer *identity // all: who the subscribers are, as far as what they see goes
}

// viewerKey tells apart subscribers of the whole tasks stream who may see
// different tasks.
type viewerKey struct {
	all   bool // sees every task
	user  string
	rooms string
}

func newTaskWatchers() *taskWatchers {
	return &taskWatchers{one: make(map[string]*watchCount), all: make(map[viewerKey]*watchCount)}
}

// watch counts a subscription in: to task id's events, or to the whole
// stream (id empty) for viewer (nil: one who sees every task). The
// returned function counts it out; it counts as open for linger more.
func (w *taskWatchers) watch(id string, viewer *identity) (release func(linger time.Duration)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pruneLocked(time.Now())
	var c *watchCount
	if id != "" {
		if c = w.one[id]; c == nil {
			c = &watchCount{}
			w.one[id] = c
		}
	} else {
		key := viewerKey{all: true}
		if viewer != nil {
			key = viewerKey{user: viewer.user, rooms: strings.Join(viewer.rooms, ",")}
		}
		if c = w.all[key]; c == nil {
			c = &watchCount{viewer: viewer}
			w.all[key] = c
		}
	}
	c.n++
	return func(linger time.Duration) {
		w.mu.Lock()
		defer w.mu.Unlock()
		c.n--
		if left := time.Now().Add(linger); left.After(c.left) {
			c.left = left
		}
	}
}

// lastWatched implements tasks.Stream.LastWatched.
func (w *taskWatchers) lastWatched(t protocol.Task) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	var last time.Time
	see := func(c *watchCount) bool {
		if c.n > 0 {
			last = now
			return true
		}
		if c.left.After(last) {
			last = c.left
		}
		return false
	}
	if c := w.one[t.ID]; c != nil && see(c) {
		return now
	}
	sc := scopeOf(&t)
	for _, c := range w.all {
		if c.viewer.sees(sc) && see(c) {
			return now
		}
	}
	return last
}

// pruneLocked forgets counts that are closed and older than any
// cancel_unwatched, once the maps have doubled since the last prune.
func (w *taskWatchers) pruneLocked(now time.Time) {
	if len(w.one)+len(w.all) < 2*max(w.n, 64) {
		return
	}
	for id, c := range w.one {
		if c.n == 0 && now.Sub(c.left) > protocol.MaxCancelUnwatched {
			delete(w.one, id)
		}
	}
	for k, c := range w.all {
		if c.n == 0 && now.Sub(c.left) > protocol.MaxCancelUnwatched {
			delete(w.all, k)
		}
	}
	w.n = len(w.one) + len(w.all)
}

// watchTasks counts a subscription to the tasks stream as a watcher of
// the tasks it may see until cleanup, then runs cleanup. A long poll
// counts for the server's long-poll wait after it ends, so that a
// client that polls again within it watches without a gap.
func (s *Server) watchTasks(r *http.Request, t eventsTarget, transport string, cleanup func()) func() {
	if r.Method != http.MethodGet {
		return cleanup
	}
	release := s.watchers.watch(t.filter, t.viewer)
	var linger time.Duration
	if transport == transportLongPoll {
		linger = s.cfg.LongPollWait
	}
	return func() {
		release(linger)
		cleanup()
	}
}
