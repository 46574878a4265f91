package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/pushd/push/client"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/tui"
)

// taskConn is the task list's link to the server.
type taskConn struct {
	*tui.Feed
	c    *client.Client
	demo demoSpec

	mu    sync.Mutex
	names map[string]bool // the demo tasks' names so far
}

var _ tui.TaskConn = (*taskConn)(nil)

func (tc *taskConn) Tasks(ctx context.Context) ([]protocol.Task, error) {
	return tc.c.ListTasks(ctx)
}

func (tc *taskConn) StartDemo(ctx context.Context) (protocol.Task, error) {
	t, err := tc.c.StartTask(ctx, tc.demo.spec(tc.demoName(time.Now())))
	if err != nil {
		return protocol.Task{}, err
	}
	return *t, nil
}

func (tc *taskConn) Cancel(ctx context.Context, id string) (protocol.Task, error) {
	t, err := tc.c.CancelTask(ctx, id)
	if err != nil {
		return protocol.Task{}, err
	}
	return *t, nil
}

// followConn is the single-task view's link to the server.
type followConn struct {
	*tui.Feed
	c  *client.Client
	id string
}

var _ tui.FollowConn = (*followConn)(nil)

func (fc *followConn) Task(ctx context.Context) (protocol.Task, error) {
	t, err := fc.c.GetTask(ctx, fc.id)
	if err != nil {
		return protocol.Task{}, err
	}
	return *t, nil
}

func (fc *followConn) Cancel(ctx context.Context) (protocol.Task, error) {
	t, err := fc.c.CancelTask(ctx, fc.id)
	if err != nil {
		return protocol.Task{}, err
	}
	return *t, nil
}

// demoSpec is the demo task that n starts in watch-progress.
type demoSpec struct {
	total    int64
	interval time.Duration
}

// demoName names a demo task after the time it starts, "demo-150405",
// and tells apart those started within one second: "demo-150405-2".
func (tc *taskConn) demoName(now time.Time) string {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.names == nil {
		tc.names = map[string]bool{}
	}
	base := "demo-" + now.Format("150405")
	name := base
	for n := 2; tc.names[name]; n++ {
		name = fmt.Sprintf("%s-%d", base, n)
	}
	tc.names[name] = true
	return name
}

// spec is the demo task called name.
func (d demoSpec) spec(name string) client.TaskSpec {
	return client.TaskSpec{Kind: "demo", Name: name,
		Params: map[string]any{"total": d.total, "interval": d.interval.String()}}
}

// historySince returns the cursor that starts a subscription n events
// before the stream's end (so a new chat shows the last n lines); with n
// 0, the end itself.
func historySince(ctx context.Context, c *client.Client, s client.Stream, n int) (string, error) {
	cur, err := c.Cursor(ctx, s)
	if err != nil {
		return "", err
	}
	from := cur.Seq
	if n > 0 {
		from = 0
		if cur.Seq > uint64(n) {
			from = cur.Seq - uint64(n)
		}
	}
	return protocol.Cursor{Epoch: cur.Epoch, Seq: from}.String(), nil
}
