package tasks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/pushd/push/protocol"
)

// Claim is what an idempotency key of a task start stands for: who
// started which task, asking for what, and when.
type Claim struct {
	Key    string    `json:"key"`
	User   string    `json:"user"`
	Digest string    `json:"digest"` // of the kind, name, params and scope asked for
	Task   string    `json:"task"`   // the id of the task the start made
	At     time.Time `json:"at"`
	// Rev is the store's revision of the claim, for DropKey; not stored.
	Rev uint64 `json:"-"`
}

// Keys keeps the idempotency keys of task starts. A task Store that
// implements it keeps them as long as its records (across restarts; a
// shared one for every server that shares it); otherwise the runner keeps
// them in memory, for as long as it runs.
type Keys interface {
	// ClaimKey stores c under c.Key, unless a claim made less than window
	// ago holds the key. It returns the claim that holds the key after
	// the call, and whether that is c. Of concurrent claims of one key,
	// one wins.
	ClaimKey(ctx context.Context, c Claim, window time.Duration) (held Claim, won bool, err error)
	// DropKey deletes the claim of c.Key if it is still c (the same Task
	// and Rev): the start it was made for did not happen.
	DropKey(ctx context.Context, c Claim) error
}

// claimSettle is how long a claim whose task cannot be found is taken
// for a start still under way on another server sharing the store;
// after it the start is taken to have died before it made its task,
// and a repeat starts the task.
const claimSettle = 10 * time.Second

// startOnce is Start for a spec with a Key.
func (r *Runner) startOnce(ctx context.Context, spec Spec, k kind, parsed parsedTask) (protocol.Task, bool, error) {
	digest, err := specDigest(spec)
	if err != nil {
		return protocol.Task{}, false, err
	}
	release, err := r.startingKey(ctx, spec.Key)
	if err != nil {
		return protocol.Task{}, false, err
	}
	defer release()
	for try := 0; ; try++ {
		c := Claim{Key: spec.Key, User: spec.Owner, Digest: digest, Task: newID(), At: time.Now().UTC()}
		held, won, err := r.keys.ClaimKey(ctx, c, r.cfg.DedupeWindow)
		if err != nil {
			return protocol.Task{}, false, fmt.Errorf("start task: idempotency key: %w", err)
		}
		if won {
			t, err := r.start(ctx, spec, k, parsed, held.Task)
			if err != nil {
				if derr := r.keys.DropKey(context.WithoutCancel(ctx), held); derr != nil {
					r.log.Warn("forget the idempotency key of a start that failed", "key", spec.Key, "err", derr)
				}
				return protocol.Task{}, false, err
			}
			return t, false, nil
		}
		if held.User != spec.Owner {
			return protocol.Task{}, false, protocol.Errorf(http.StatusConflict, protocol.CodeConflict,
				"Idempotency-Key %q was used by another user in the last %s; use a key of your own", spec.Key, r.cfg.DedupeWindow)
		}
		if held.Digest != digest {
			return protocol.Task{}, false, protocol.Errorf(http.StatusConflict, protocol.CodeConflict,
				"Idempotency-Key %q started task %s with another kind, name, params or scope in the last %s; a new task needs a new key", spec.Key, held.Task, r.cfg.DedupeWindow)
		}
		t, err := r.Find(ctx, held.Task)
		if err == nil {
			return t, true, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return protocol.Task{}, false, err
		}
		// No task for the claim: its start died before it made one (or
		// the task has been forgotten), unless a server that shares the
		// store is making it right now.
		if r.peers != nil && time.Since(held.At) < claimSettle {
			return protocol.Task{}, false, protocol.Errorf(http.StatusServiceUnavailable, protocol.CodeUnavailable,
				"a start with Idempotency-Key %q is under way on another server; send it again in a moment", spec.Key).RetryIn(time.Second)
		}
		if try > 0 {
			return protocol.Task{}, false, fmt.Errorf("start task: idempotency key %q: its claim keeps coming back without a task", spec.Key)
		}
		if err := r.keys.DropKey(ctx, held); err != nil {
			return protocol.Task{}, false, fmt.Errorf("start task: idempotency key: %w", err)
		}
	}
}

// startingKey waits until no other start with key is under way here,
// then marks one as under way until release is called.
func (r *Runner) startingKey(ctx context.Context, key string) (release func(), err error) {
	for {
		r.mu.Lock()
		busy, ok := r.starting[key]
		if !ok {
			done := make(chan struct{})
			r.starting[key] = done
			r.mu.Unlock()
			return func() {
				r.mu.Lock()
				delete(r.starting, key)
				r.mu.Unlock()
				close(done)
			}, nil
		}
		r.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, fmt.Errorf("start task: %w", ctx.Err())
		}
	}
}

// specDigest sums up what a start asks for, so that a repeat of its key
// can be checked against it: kind, name, params (their JSON in a
// canonical form) and scope. The owner is checked apart.
func specDigest(spec Spec) (string, error) {
	var params any
	if len(spec.Params) > 0 {
		dec := json.NewDecoder(bytes.NewReader(spec.Params))
		dec.UseNumber()
		if err := dec.Decode(&params); err != nil {
			return "", fmt.Errorf("%w: %s", ErrParamsJSON, err)
		}
	}
	canon, err := json.Marshal(struct {
		Kind            string        `json:"kind"`
		Name            string        `json:"name"`
		Params          any           `json:"params"`
		Room            string        `json:"room"`
		Private         bool          `json:"private"`
		CancelUnwatched time.Duration `json:"cancel_unwatched"`
	}{spec.Kind, spec.Name, params, spec.Room, spec.Private, spec.CancelUnwatched})
	if err != nil {
		return "", fmt.Errorf("start task: %w", err)
	}
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:]), nil
}

// memKeys keeps idempotency keys in memory, for a runner whose store keeps
// none (or that has no store).
type memKeys struct {
	mu     sync.Mutex
	claims map[string]Claim
	pruned int // len(claims) after the last prune
	rev    uint64
}

var _ Keys = (*memKeys)(nil)

func newMemKeys() *memKeys { return &memKeys{claims: make(map[string]Claim)} }

// ClaimKey implements Keys. Claims older than window go once the map has
// doubled since they were last looked at.
func (m *memKeys) ClaimKey(_ context.Context, c Claim, window time.Duration) (Claim, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	if held, ok := m.claims[c.Key]; ok && now.Sub(held.At) < window {
		return held, false, nil
	}
	if len(m.claims) >= 2*max(m.pruned, 64) {
		for k, held := range m.claims {
			if now.Sub(held.At) >= window {
				delete(m.claims, k)
			}
		}
		m.pruned = len(m.claims)
	}
	m.rev++
	c.Rev = m.rev
	m.claims[c.Key] = c
	return c, true, nil
}

// DropKey implements Keys.
func (m *memKeys) DropKey(_ context.Context, c Claim) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if held, ok := m.claims[c.Key]; ok && held.Rev == c.Rev {
		delete(m.claims, c.Key)
	}
	return nil
}
