package tasks_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server/tasks"
	"github.com/pushd/push/server/tasks/tasktest"
)

// What a runner does with the tasks of other servers (Peers), and what
// it offers them (Local).

// fakePeers are other servers that run one task, remote.
type fakePeers struct {
	remote protocol.Task

	mu    sync.Mutex
	calls []string // "cancel <id>", "report <id>"
}

var _ tasks.Peers = (*fakePeers)(nil)

func (p *fakePeers) Serve(ctx context.Context, _ tasks.Local) error {
	<-ctx.Done()
	return nil
}

func (p *fakePeers) Get(_ context.Context, id string) (protocol.Task, error) {
	if id != p.remote.ID {
		return protocol.Task{}, fmt.Errorf("%w: %s", tasks.ErrNotFound, id)
	}
	return p.remote, nil
}

func (p *fakePeers) List(context.Context) ([]protocol.Task, error) {
	return []protocol.Task{p.remote}, nil
}

func (p *fakePeers) Cancel(_ context.Context, id string) (protocol.Task, error) {
	p.called("cancel " + id)
	return p.Get(context.Background(), id)
}

func (p *fakePeers) Report(_ context.Context, id string, _ protocol.ProgressReport) (protocol.Task, error) {
	p.called("report " + id)
	return p.Get(context.Background(), id)
}

func (p *fakePeers) LastWatched(context.Context, protocol.Task) (time.Time, error) {
	return time.Time{}, nil
}

func (p *fakePeers) called(call string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, call)
}

func (p *fakePeers) took() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.calls...)
}

func TestRequestsForOtherServersTasksGoToPeers(t *testing.T) {
	now := time.Now().UTC()
	peers := &fakePeers{remote: protocol.Task{ID: "tremote", Kind: "external", Name: "elsewhere", State: protocol.TaskRunning, Created: now.Add(-time.Hour), Started: &now}}
	r := startRunner(t, nil, tasks.Config{}, newMemStore(), peers)
	local := r.start("external", "here", "")
	ctx := t.Context()

	if got, err := r.Find(ctx, peers.remote.ID); err != nil || got.Name != "elsewhere" {
		t.Errorf("Find of the other server's task: %s, %v", tasktest.String(got), err)
	}
	all, err := r.ListAll(ctx)
	if err != nil || len(all) != 2 || all[0].ID != local.ID || all[1].ID != peers.remote.ID {
		t.Errorf("ListAll: %v, %v; want this server's task, then the older one of the other", all, err)
	}
	if _, err := r.Report(ctx, local.ID, protocol.ProgressReport{Done: ptr(int64(1))}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Report(ctx, peers.remote.ID, protocol.ProgressReport{Done: ptr(int64(-1))}); err == nil {
		t.Error("a bad report for another server's task was taken")
	}
	if _, err := r.Report(ctx, peers.remote.ID, protocol.ProgressReport{Done: ptr(int64(1))}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Cancel(ctx, peers.remote.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Cancel(ctx, local.ID); err != nil {
		t.Fatal(err)
	}
	if got := r.stream.waitFinal(t, local.ID); got.State != protocol.TaskCancelled {
		t.Errorf("this server's task ended %s; want cancelled here", tasktest.String(got))
	}
	// Only the requests for the other server's task went to the peers, a
	// bad report not even those.
	if got, want := fmt.Sprint(peers.took()), "[report tremote cancel tremote]"; got != want {
		t.Errorf("the peers were asked %s; want %s", got, want)
	}
}

// sharedStore is a task store shared by several servers: it is their
// peers too.
type sharedStore struct {
	*memStore
	*fakePeers
}

func TestNewRefusesPeersWithoutTheirStore(t *testing.T) {
	peers := &fakePeers{}
	shared := sharedStore{newMemStore(), peers}
	for _, c := range []struct {
		name  string
		store tasks.Store
		peers tasks.Peers
	}{
		{"peers without a store", nil, peers},
		{"a shared store without its peers", shared, nil},
	} {
		if r, err := tasks.New(t.Context(), &memStream{}, tasks.Config{}, c.store, c.peers, nil); err == nil {
			shutdown(t, r)
			t.Errorf("%s: a runner was made", c.name)
		}
	}
}

func TestAdoptAndAnnounce(t *testing.T) {
	// What peers do with the task of a vanished server: Announce publishes
	// it on the tasks stream, and Adopt makes it one of this server's
	// finished tasks.
	r := startRunner(t, nil, tasks.Config{KeepFinished: 2}, nil, nil)
	local := r.Local()
	created := time.Now().UTC().Add(-time.Minute)
	finished := created.Add(time.Second)
	orphan := protocol.Task{ID: "torphan", Kind: "demo", Name: "orphan", State: protocol.TaskFailed,
		Message: "interrupted: the server running it is gone", Created: created, Finished: &finished}

	if err := local.Announce(t.Context(), orphan); err != nil {
		t.Fatal(err)
	}
	evs := r.stream.seen()
	if f := tasktest.Final(evs, orphan.ID); f == nil || f.State != protocol.TaskFailed || f.Message != orphan.Message {
		t.Fatalf("the tasks stream has %s; want the orphan's end", tasktest.EventsString(evs))
	}

	local.Adopt(orphan)
	if got := r.get(orphan.ID); got.State != protocol.TaskFailed || got.Name != "orphan" {
		t.Fatalf("Get after Adopt: %s", tasktest.String(got))
	}
	// A task that has not ended is not adopted; one already here is left
	// alone.
	live := orphan
	live.ID, live.State, live.Finished = "tlive", protocol.TaskRunning, nil
	local.Adopt(live)
	if _, err := r.Get("tlive"); !errors.Is(err, tasks.ErrNotFound) {
		t.Errorf("Get of a live task given to Adopt: %v; want ErrNotFound", err)
	}
	again := orphan
	again.Name = "other"
	local.Adopt(again)
	if got := r.get(orphan.ID); got.Name != "orphan" {
		t.Fatalf("a second Adopt replaced the task: %s", tasktest.String(got))
	}

	// Adopted tasks are forgotten with the others, oldest finished first.
	for range 2 {
		id := r.start("external", "", "").ID
		r.report(id, protocol.ProgressReport{State: protocol.TaskSucceeded})
	}
	r.waitGone(orphan.ID, taskWait)
}
