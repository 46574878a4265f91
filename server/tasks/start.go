package tasks

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pushd/push/protocol"
)

// Spec is a task to start: its kind and the kind's params, who starts it,
// where it shows and whether it stops when nobody watches.
type Spec struct {
	// Kind is a registered kind (see RegisterKind).
	Kind string
	// Name is a label for people; empty takes the kind's.
	Name string
	// Params are the kind's parameters as a JSON object (nil: none).
	Params json.RawMessage
	// Owner is who starts the task: only they (and admins) may cancel it
	// or report on it, and a Private task shows only to them.
	Owner string
	// Room scopes the task to a room, Private to its owner; neither shows
	// it to everyone. They do not go together.
	Room    string
	Private bool
	// CancelUnwatched, when positive, cancels the task (message
	// protocol.MessageUnwatched; its kind's context is cancelled) once
	// nobody who can see it has watched it for that long, on any server
	// (see Stream.LastWatched and Peers.LastWatched); from
	// protocol.MinCancelUnwatched to protocol.MaxCancelUnwatched.
	CancelUnwatched time.Duration
	// Key, when set, is an idempotency key (protocol.ValidateID):
	// a start with a key used in the last Config.DedupeWindow by the same
	// owner for the same kind, name, params and scope starts nothing and
	// answers the task the first one started; one that differs is
	// refused (a *protocol.Error, 409).
	Key string
}

// check refuses a spec whose scope or cancel_unwatched is out of bounds.
func (s Spec) check() error {
	if s.Room != "" {
		if err := protocol.ValidateName("room", s.Room); err != nil {
			return fmt.Errorf("%w: %w", ErrBadParams, err)
		}
		if s.Private {
			return fmt.Errorf("%w: a task is scoped to a room or private, not both", ErrBadParams)
		}
	}
	if s.CancelUnwatched != 0 && (s.CancelUnwatched < protocol.MinCancelUnwatched || s.CancelUnwatched > protocol.MaxCancelUnwatched) {
		return fmt.Errorf("%w: cancel_unwatched %s: give a duration from %s to %s", ErrBadParams, s.CancelUnwatched, protocol.MinCancelUnwatched, protocol.MaxCancelUnwatched)
	}
	if s.Key != "" {
		if err := protocol.ValidateID(protocol.IdempotencyKeyHeader, s.Key); err != nil {
			return fmt.Errorf("%w: %w", ErrBadParams, err)
		}
	}
	return nil
}

// newID returns a fresh task id: "t" and 12 characters of [a-z2-7].
func newID() string {
	return "t" + strings.ToLower(rand.Text()[:12])
}

// Start creates a task as spec says and runs it, or queues it when
// MaxRunning tasks are running. With a Spec.Key used before (see there)
// it starts nothing and returns the task that key started, with repeat
// true.
func (r *Runner) Start(ctx context.Context, spec Spec) (t protocol.Task, repeat bool, err error) {
	r.kindsMu.RLock()
	k, ok := r.kinds[spec.Kind]
	r.kindsMu.RUnlock()
	if !ok {
		return protocol.Task{}, false, fmt.Errorf("%w %q; known kinds: %s", ErrUnknownKind, spec.Kind, r.kindNames())
	}
	if err := spec.check(); err != nil {
		return protocol.Task{}, false, err
	}
	parsed, err := k.parse(spec.Params)
	if errors.Is(err, ErrParamsJSON) {
		return protocol.Task{}, false, err
	}
	if err != nil {
		return protocol.Task{}, false, fmt.Errorf("%w: %w", ErrBadParams, err)
	}
	if spec.Name == "" {
		spec.Name = spec.Kind
	}
	if spec.Key != "" {
		return r.startOnce(ctx, spec, k, parsed)
	}
	t, err = r.start(ctx, spec, k, parsed, newID())
	return t, false, err
}

// start creates task id and runs or queues it.
func (r *Runner) start(ctx context.Context, spec Spec, k kind, parsed parsedTask, id string) (protocol.Task, error) {
	now := time.Now().UTC()
	t := &task{runner: r, run: parsed.run, external: k.external, snap: protocol.Task{
		ID: id, Kind: spec.Kind, Name: spec.Name, State: protocol.TaskQueued, Created: now, Total: parsed.total,
		Owner: spec.Owner, Room: spec.Room, Private: spec.Private,
	}}
	if spec.CancelUnwatched > 0 {
		t.snap.CancelUnwatched = spec.CancelUnwatched.String()
	}
	t.ctx, t.cancel = context.WithCancelCause(context.Background())
	if t.external {
		t.reports = make(chan error, 1)
	}
	if r.peers != nil {
		// The other servers learn of the task from its record: it starts
		// only once that is stored.
		if err := r.store.SaveTask(context.WithoutCancel(ctx), t.snap); err != nil {
			return protocol.Task{}, fmt.Errorf("start task: %w", err)
		}
	}

	r.mu.Lock()
	start := t.external || r.running < r.cfg.MaxRunning
	if err := r.admitLocked(t, start); err != nil {
		r.mu.Unlock()
		if r.peers != nil {
			r.deleteRecords([]string{t.snap.ID})
		}
		return protocol.Task{}, err
	}
	r.tasks[t.snap.ID] = t
	switch {
	case t.external:
		r.external.Add(1)
		t.countedExternal = true // t is not yet seen by others
	case start:
		r.running++
	default:
		r.queue = append(r.queue, t)
	}
	r.wg.Add(1)
	t.mu.Lock() // publish the queued state before the task can change
	r.mu.Unlock()
	if r.peers != nil {
		t.sendLocked(ctx) // saved above
	} else {
		t.changedLocked(ctx)
	}
	t.watchLocked(now)
	snap := t.snap
	t.mu.Unlock()
	if start {
		go t.runTask()
	}
	return snap, nil
}

// admitLocked refuses a new task t (start: it would run at once, not
// queue) once Shutdown has begun (ErrShutdown), and when the runner is full
// (ErrBusy): MaxExternal external tasks running, or MaxQueued tasks
// waiting. r.mu is held.
func (r *Runner) admitLocked(t *task, start bool) error {
	switch {
	case r.closing:
		return ErrShutdown
	case t.external && r.external.Load() >= int64(r.cfg.MaxExternal):
		return fmt.Errorf("%w: %d external tasks are running, the most this server takes; start again once some have ended", ErrBusy, r.external.Load())
	case !start && len(r.queue) >= r.cfg.MaxQueued:
		return fmt.Errorf("%w: %d tasks are waiting to run, the most this server queues; start again once some have run", ErrBusy, len(r.queue))
	}
	return nil
}
