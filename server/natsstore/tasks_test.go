package natsstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushd/push/internal/natstest"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
	"github.com/pushd/push/server/natsstore"
	"github.com/pushd/push/server/tasks"
)

// openTasks opens a task store on st until the test ends.
func openTasks(t *testing.T, st *natsstore.Store, opts natsstore.TaskOptions) *natsstore.Tasks {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ts, err := natsstore.OpenTasks(ctx, st, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ts.Close() })
	return ts
}

// runningTask is a task record as a server saves it while the task runs.
func runningTask(name string) protocol.Task {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return protocol.Task{ID: "t" + server.NewEpoch(), Kind: "external", Name: name, State: protocol.TaskRunning, Created: now, Started: &now}
}

func ids(tasks []protocol.Task) []string {
	var out []string
	for _, t := range tasks {
		out = append(out, t.ID)
	}
	return out
}

func TestTasksRecordsAreSharedAndOwned(t *testing.T) {
	ns := natstest.Start(t)
	prefix := "t" + server.NewEpoch()
	x := openTasks(t, open(t, ns.URL(), natsstore.Options{Prefix: prefix}), natsstore.TaskOptions{NodeTTL: steadyTTL})
	y := openTasks(t, open(t, ns.URL(), natsstore.Options{Prefix: prefix}), natsstore.TaskOptions{NodeTTL: steadyTTL})
	ctx := t.Context()
	task := runningTask("shared")
	if err := x.SaveTask(ctx, task); err != nil {
		t.Fatal(err)
	}

	got, err := y.Get(ctx, task.ID)
	if err != nil || got.ID != task.ID || got.Name != "shared" || got.State != protocol.TaskRunning || !got.Created.Equal(task.Created) {
		t.Fatalf("the other node reads %+v, %v; want %+v", got, err, task)
	}
	// A node's own tasks are its server's to show, not its peers'.
	if _, err := x.Get(ctx, task.ID); !errors.Is(err, tasks.ErrNotFound) {
		t.Fatalf("the owner's peers give %v for its own task, want ErrTaskNotFound", err)
	}
	// A list sees every record saved before it was asked for.
	task.Done, task.Percent = 3, 30
	if err := x.SaveTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	list, err := y.List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != task.ID || list[0].Done != 3 {
		t.Fatalf("the other node lists %+v, %v; want the task at done 3", list, err)
	}
	if list, err := x.List(ctx); err != nil || len(list) != 0 {
		t.Fatalf("the owner's peers list %v, %v; want none of its own", ids(list), err)
	}
	// A server that starts takes back no other node's records.
	if recs, err := y.LoadTasks(ctx); err != nil || len(recs) != 0 {
		t.Fatalf("LoadTasks: %v, %v; want nothing", ids(recs), err)
	}

	if err := x.DeleteTask(ctx, task.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := y.Get(ctx, task.ID); !errors.Is(err, tasks.ErrNotFound) {
		t.Fatalf("a deleted task reads %v, want ErrTaskNotFound", err)
	}
	if list, err := y.List(ctx); err != nil || len(list) != 0 {
		t.Fatalf("after the delete the other node lists %v, %v", ids(list), err)
	}
	for _, id := range []string{"no-such-task", "not a key", "t.>", ""} {
		if _, err := y.Get(ctx, id); !errors.Is(err, tasks.ErrNotFound) {
			t.Errorf("Get(%q): %v, want ErrTaskNotFound", id, err)
		}
	}
}

func TestTasksRequestsNobodyAnswers(t *testing.T) {
	ns := natstest.Start(t)
	prefix := "t" + server.NewEpoch()
	sx := open(t, ns.URL(), natsstore.Options{Prefix: prefix})
	x := openTasks(t, sx, natsstore.TaskOptions{NodeTTL: steadyTTL}) // saves records, never serves
	y := openTasks(t, open(t, ns.URL(), natsstore.Options{Prefix: prefix, Timeout: 500 * time.Millisecond}), natsstore.TaskOptions{NodeTTL: steadyTTL})
	ctx := t.Context()
	task := runningTask("silent")
	if err := x.SaveTask(ctx, task); err != nil {
		t.Fatal(err)
	}

	// Nobody listens for the owner's requests: it fails at once.
	_, err := y.Cancel(ctx, task.ID)
	if !errors.Is(err, server.ErrUnavailable) || !strings.Contains(err.Error(), "does not answer") {
		t.Fatalf("cancel of a task whose server is not there: %v, want ErrUnavailable saying it does not answer", err)
	}
	// The owner's subject is subscribed but nothing answers: it fails at
	// the timeout.
	sub, err := sx.Conn().SubscribeSync(prefix + ".tasks.node." + x.Node())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := sx.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	done := int64(1)
	_, err = y.Report(ctx, task.ID, protocol.ProgressReport{Done: &done})
	if !errors.Is(err, server.ErrUnavailable) || !strings.Contains(err.Error(), "did not answer in time") {
		t.Fatalf("report to a server that does not answer: %v, want ErrUnavailable saying it did not answer in time", err)
	}
	if _, err := sub.NextMsg(time.Second); err != nil {
		t.Fatalf("the request never reached the owner's subject: %v", err)
	}

	// A finished task is answered from its record, without asking.
	finished := time.Now().UTC()
	task.State, task.Finished = protocol.TaskSucceeded, &finished
	if err := x.SaveTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	if _, err := y.Cancel(ctx, task.ID); !errors.Is(err, tasks.ErrFinished) {
		t.Fatalf("cancel of a finished task: %v, want ErrTaskFinished", err)
	}
	if _, err := y.Cancel(ctx, "tnosuchtask"); !errors.Is(err, tasks.ErrNotFound) {
		t.Fatalf("cancel of an unknown task: %v, want ErrTaskNotFound", err)
	}
}

func TestTasksOfAVanishedNodeAreTakenOverAndItsSavesRefused(t *testing.T) {
	ns := natstest.Start(t)
	prefix := "t" + server.NewEpoch()
	// x saves a record but never says it is alive: a node that is gone.
	x := openTasks(t, open(t, ns.URL(), natsstore.Options{Prefix: prefix}), natsstore.TaskOptions{NodeTTL: goneTTL})
	ctx := t.Context()
	task := runningTask("orphan")
	if err := x.SaveTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	b := startTaskNode(t, ns.URL(), prefix, 0, goneTTL)
	end := b.WaitTask(t, task.ID, "failed", func(tk protocol.Task) bool { return tk.State.Final() })
	if end.State != protocol.TaskFailed || !strings.Contains(end.Message, "node "+x.Node()+") is gone") {
		t.Fatalf("the orphan ended %+v, want failed: its server is gone", end)
	}
	// B keeps it as one of its own finished tasks now.
	if got, err := b.Srv().Tasks().Get(task.ID); err != nil || got.State != protocol.TaskFailed {
		t.Fatalf("b's own tasks have %+v, %v; want the orphan, failed", got, err)
	}
	// The vanished node, back, may no longer write the record.
	task.Done = 5
	if err := x.SaveTask(ctx, task); !errors.Is(err, tasks.ErrTaken) {
		t.Fatalf("save by the node that lost the task: %v, want ErrTaskTaken", err)
	}
	if err := x.DeleteTask(ctx, task.ID); err != nil {
		t.Fatal(err)
	}
	if got, status := b.getTask(t, task.ID); status != http.StatusOK || got.State != protocol.TaskFailed || got.Done != 0 {
		t.Fatalf("after the lost node's save and delete, b shows %d %+v; want the task failed as b recorded it", status, got)
	}
}

func TestTasksLostTaskStopsOnItsServer(t *testing.T) {
	ns := natstest.Start(t)
	prefix := "t" + server.NewEpoch()
	a := startTaskNode(t, ns.URL(), prefix, 0, steadyTTL)
	id := a.StartTask(t, `{"kind":"demo","name":"long","total":100000,"interval":"5ms"}`).ID
	a.WaitTask(t, id, "making progress", func(tk protocol.Task) bool { return tk.Done >= 2 })

	// Another node takes the record over, as it does when it finds a's
	// server gone while a was only out of reach.
	kv, err := a.Store.JetStream().KeyValue(t.Context(), prefix+"_tasks")
	if err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, waitTimeout, 5*time.Millisecond, func() error {
		e, err := kv.Get(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		var rec struct {
			Node string        `json:"node"`
			Task protocol.Task `json:"task"`
		}
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		rec.Node, rec.Task.State, rec.Task.Message, rec.Task.Finished = "elsewhere", protocol.TaskFailed, "taken over", &now
		data, _ := json.Marshal(rec)
		_, err = kv.Update(t.Context(), id, data, e.Revision())
		if err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			t.Fatal(err)
		}
		return err // a revision mismatch: a's progress came first, so again
	})

	// a's task stops there, announcing nothing, and a shows the record.
	testwait.Until(t, waitTimeout, 5*time.Millisecond, func() error {
		if _, err := a.Srv().Tasks().Get(id); !errors.Is(err, tasks.ErrNotFound) {
			return fmt.Errorf("the task still runs on a after another node took it over: %v", err)
		}
		return nil
	})
	if got, status := a.getTask(t, id); status != http.StatusOK || got.State != protocol.TaskFailed || got.Message != "taken over" {
		t.Fatalf("a shows %d %+v, want the record: failed, taken over", status, got)
	}
	if got, ok := listed(a.Tasks(t), id); !ok || got.State != protocol.TaskFailed {
		t.Fatalf("a lists %+v, want the task failed", a.Tasks(t))
	}
	if f := finals(a.streamTask(t, id)); len(f) != 0 {
		t.Fatalf("a announced the end of a task it lost: %+v", f)
	}
	a.wantTaskError(t, http.StatusConflict, protocol.CodeConflict, http.MethodPost, "/v1/tasks/"+id+"/cancel", "")
}

func TestTasksStoreAndPeersGoTogether(t *testing.T) {
	ns := natstest.Start(t)
	st := open(t, ns.URL(), natsstore.Options{Prefix: "t" + server.NewEpoch()})
	shared := openTasks(t, st, natsstore.TaskOptions{NodeTTL: steadyTTL})
	for _, cfg := range []server.Config{
		{Store: st, TaskPeers: shared},
		{Store: st, TaskStore: shared},
	} {
		srv, err := server.New(cfg)
		if err == nil {
			_ = srv.Shutdown(t.Context())
			t.Fatalf("a server with the shared task store as only one of TaskStore and TaskPeers started: %+v", cfg)
		}
	}
}

func TestTasksListIsNewestFirstAcrossServers(t *testing.T) {
	ns := natstest.Start(t)
	nodes := startTaskCluster(t, ns.URL(), 2, steadyTTL)
	var want []string
	for i := range 6 {
		want = append(want, nodes[i%2].StartTask(t, `{"kind":"external"}`).ID)
	}
	slices.Reverse(want)
	for _, n := range nodes {
		if got := ids(n.Tasks(t)); !slices.Equal(got, want) {
			t.Fatalf("%s lists %v, want %v", n.URL, got, want)
		}
	}
}

// A takeover whose write lands but whose answer is lost still ends the
// task: the node reads the record back, finds it its own, publishes the
// task's end and keeps it; if the read is lost too, at the next reap.
func TestTasksTakeOverWithLostAnswer(t *testing.T) {
	for _, readLost := range []bool{false, true} {
		t.Run(fmt.Sprintf("read lost %v", readLost), func(t *testing.T) {
			ns := natstest.Start(t)
			px := startNATSProxy(t, ns.URL())
			prefix := "t" + server.NewEpoch()
			// x saves a record but never says it is alive: a node that is
			// gone.
			x := openTasks(t, open(t, ns.URL(), natsstore.Options{Prefix: prefix}), natsstore.TaskOptions{NodeTTL: goneTTL})
			task := runningTask("orphan")
			if err := x.SaveTask(t.Context(), task); err != nil {
				t.Fatal(err)
			}
			bucket := prefix + "_tasks"
			ch := px.loseAnswer("$KV."+bucket+"."+task.ID, "interrupted")
			var read <-chan struct{}
			if readLost {
				read = px.loseRequest("$JS.API.DIRECT.GET.KV_"+bucket+".$KV."+bucket+"."+task.ID, "")
			}
			b := startTaskNode(t, px.URL(), prefix, 0, goneTTL)
			lost(t, "the answer to the takeover", ch)
			if readLost {
				lost(t, "the read of the record", read)
			}

			end := b.WaitTask(t, task.ID, "failed", func(tk protocol.Task) bool { return tk.State.Final() })
			if end.State != protocol.TaskFailed || !strings.Contains(end.Message, "node "+x.Node()+") is gone") {
				t.Fatalf("the orphan ended %+v, want failed: its server is gone", end)
			}
			if got, err := b.Srv().Tasks().Get(task.ID); err != nil || got.State != protocol.TaskFailed {
				t.Fatalf("b's own tasks have %+v, %v; want the orphan, failed", got, err)
			}
			if f := b.waitFinals(t, task.ID); len(f) != 1 || f[0].State != protocol.TaskFailed {
				t.Fatalf("final events %+v, want one: failed", f)
			}
		})
	}
}
