package server

import "github.com/pushd/push/protocol"

// taskScope is where a task shows: in a room (to those who may use it),
// or privately (to its owner). A task that shows to everyone has none
// (nil), as have events that are not a task's.
type taskScope struct {
	owner   string
	room    string
	private bool
}

// scopeOf returns t's scope; nil for a task everyone sees, or no task.
func scopeOf(t *protocol.Task) *taskScope {
	if t == nil || !t.Private && t.Room == "" {
		return nil
	}
	return &taskScope{owner: t.Owner, room: t.Room, private: t.Private}
}

// sees reports whether id may see a task of scope sc: everyone sees
// unscoped tasks; a room's, those who may use the room; a private one,
// its owner. On a server without tokens (nil) and with the admin right,
// every task.
func (id *identity) sees(sc *taskScope) bool {
	switch {
	case sc == nil || id.isAdmin():
		return true
	case sc.private:
		return sc.owner == id.user
	}
	return id.mayJoin(sc.room)
}

// seesTask is sees for a task.
func (id *identity) seesTask(t *protocol.Task) bool { return id.sees(scopeOf(t)) }

// taskViewer returns what a subscription to the tasks stream filters on
// for id: nil when id sees every task, so that the fan-out checks nothing
// per event for it.
func taskViewer(id *identity) *identity {
	if id.isAdmin() {
		return nil
	}
	return id
}
