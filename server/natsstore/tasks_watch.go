package natsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushd/push/protocol"
)

// LastWatched implements tasks.Peers: it asks every other live node at
// once, over the subject each serves its task requests on, when it last
// had a watcher of t, and returns the latest answer. A node that has
// stopped serving (no responders) has no watchers left; one that does not
// answer in time is an error, so the task is not taken for unwatched.
//
// Asking, rather than each node keeping its watchers in a bucket, costs
// nothing while no task has cancel_unwatched, gives exact times (no
// renewal period to allow for), and asks only when the owner has had no
// watcher of its own for the whole time.
func (ts *Tasks) LastWatched(ctx context.Context, t protocol.Task) (time.Time, error) {
	if err := ts.st.checkOpen(); err != nil {
		return time.Time{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, ts.st.opts.Timeout)
	defer cancel()
	nodes, err := ts.nodes.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, unavailable(fmt.Errorf("list the servers: %w", err))
	}
	data, err := json.Marshal(peerRequest{Op: opWatched, ID: t.ID, Task: &t})
	if err != nil {
		return time.Time{}, fmt.Errorf("encode task request: %w", err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		last time.Time
		errs []error
	)
	for _, node := range nodes {
		if node == ts.node {
			continue
		}
		wg.Go(func() {
			at, err := ts.askWatched(ctx, node, data)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			} else if at.After(last) {
				last = at
			}
		})
	}
	wg.Wait()
	return last, errors.Join(errs...)
}

// askWatched asks one node when it last had a watcher of a task.
func (ts *Tasks) askWatched(ctx context.Context, node string, data []byte) (time.Time, error) {
	msg, err := ts.st.nc.RequestWithContext(ctx, ts.subject(node), data)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return time.Time{}, nil
	case err != nil:
		return time.Time{}, unavailable(fmt.Errorf("ask server %s for the watchers of a task: %w", node, err))
	}
	var reply peerReply
	if err := json.Unmarshal(msg.Data, &reply); err != nil {
		return time.Time{}, fmt.Errorf("undecodable answer from server %s: %w", node, err)
	}
	switch {
	case reply.Error != nil:
		return time.Time{}, reply.Error
	case reply.Watched == nil:
		return time.Time{}, fmt.Errorf("server %s did not say when the task was watched", node)
	}
	return *reply.Watched, nil
}
