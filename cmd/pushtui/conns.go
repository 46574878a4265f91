package main

import (
	"context"
	"time"

	"github.com/pushd/push/client"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/tui"
)

// chatConn is the chat screen's link to the server: a feed of the room and
// the tasks stream, and the client's requests.
type chatConn struct {
	*feed
	c    *client.Client
	room string
}

var _ tui.ChatConn = (*chatConn)(nil)

func (cc *chatConn) Send(ctx context.Context, id, text string) error {
	_, err := cc.c.Publish(ctx, cc.room, text, client.WithID(id))
	return err
}

func (cc *chatConn) Presence(ctx context.Context) ([]string, error) {
	return cc.c.Presence(ctx, cc.room)
}

func (cc *chatConn) Tasks(ctx context.Context) ([]protocol.Task, error) {
	return cc.c.ListTasks(ctx)
}

// taskConn is the task list's link to the server.
type taskConn struct {
	*feed
	c    *client.Client
	demo demoSpec
}

var _ tui.TaskConn = (*taskConn)(nil)

func (tc *taskConn) Tasks(ctx context.Context) ([]protocol.Task, error) {
	return tc.c.ListTasks(ctx)
}

func (tc *taskConn) StartDemo(ctx context.Context) (protocol.Task, error) {
	t, err := tc.c.StartTask(ctx, tc.demo.spec(time.Now()))
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
	*feed
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

// spec names the task after the time it starts: "demo-150405".
func (d demoSpec) spec(now time.Time) client.TaskSpec {
	return client.TaskSpec{Kind: "demo", Name: "demo-" + now.Format("150405"),
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
