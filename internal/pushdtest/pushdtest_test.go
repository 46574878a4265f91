package pushdtest_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestEveryTransportReadsWhatIsPublished(t *testing.T) {
	s := pushdtest.Start(t, server.Config{})
	for _, kind := range append(pushdtest.Transports, pushdtest.ShortPoll) {
		t.Run(kind, func(t *testing.T) {
			first := s.Publish(t, kind, "ann", "before")
			sub := s.Subscribe(t, kind, pushdtest.RoomPath(kind), pushdtest.SubOptions{Since: "0"})
			got := sub.NextN(t, 1)
			pushdtest.CheckMessages(t, got, first.Epoch, first.Seq, []string{"before"})
			ev := s.Publish(t, kind, "bob", "live")
			if next := sub.Next(t); next.Seq != ev.Seq || next.Text != ev.Text {
				t.Fatalf("read %s; want %s", pushdtest.OneLine(next), pushdtest.OneLine(ev))
			}
			pushdtest.CheckMessages(t, s.History(t, pushdtest.RoomPath(kind)), first.Epoch, first.Seq, []string{"before", "live"})
		})
	}
}

func TestRestartStartsANewEpochOnTheMemoryStore(t *testing.T) {
	s := pushdtest.Start(t, server.Config{})
	w := s.Watch(t, pushdtest.SSE, pushdtest.RoomPath("r"), pushdtest.SubOptions{})
	before := s.Head(t, pushdtest.RoomPath("r"))
	s.Restart(t)
	if _, how := w.WaitEnded(t); how != "sse close "+protocol.CloseShutdown {
		t.Fatalf("the watcher's stream ended with %q; want the shutdown close event", how)
	}
	if after := s.Head(t, pushdtest.RoomPath("r")); after.Epoch == before.Epoch {
		t.Fatalf("epoch %s kept across a restart on a new memory store", after.Epoch)
	}
}

func TestRestartKeepsAStoreGiven(t *testing.T) {
	store := server.NewMemoryStore(server.MemoryOptions{MaxEvents: 100})
	t.Cleanup(func() { _ = store.Close() })
	s := pushdtest.Start(t, server.Config{Store: store})
	ev := s.Publish(t, "r", "ann", "kept")
	s.Restart(t)
	pushdtest.CheckMessages(t, s.History(t, pushdtest.RoomPath("r")), ev.Epoch, ev.Seq, []string{"kept"})
}

func TestDownRefusesUntilUp(t *testing.T) {
	s := pushdtest.Start(t, server.Config{})
	sub := s.Subscribe(t, pushdtest.WS, pushdtest.RoomPath("r"), pushdtest.SubOptions{})
	s.Down(t)
	ctx, cancel := context.WithTimeout(context.Background(), pushdtest.Timeout)
	defer cancel()
	var ended *pushdtest.Ended
	if _, err := sub.Read(ctx); !errors.As(err, &ended) {
		t.Fatalf("a WebSocket read while down: %v; want the stream ended", err)
	}
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/healthz", nil)
	if resp, err := s.Client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("a request while down got %d", resp.StatusCode)
	}
	s.Up(t)
	if a := s.Get(t, "/healthz"); a.Status != http.StatusOK {
		t.Fatalf("healthz after up: %d %s", a.Status, a.Body)
	}
}

func TestDropConnsEndsStreams(t *testing.T) {
	s := pushdtest.Start(t, server.Config{})
	w := s.Watch(t, pushdtest.WS, pushdtest.RoomPath("r"), pushdtest.SubOptions{})
	s.WaitConnections(t, "ws", 1)
	s.DropConns()
	if _, how := w.WaitEnded(t); !strings.HasPrefix(how, "ws") {
		t.Fatalf("ended %q", how)
	}
	s.WaitConnections(t, "ws", 0)
}

func TestWatcherPollsAreCounted(t *testing.T) {
	s := pushdtest.Start(t, server.Config{})
	w := s.Watch(t, pushdtest.LongPoll, pushdtest.RoomPath("r"), pushdtest.SubOptions{Since: "0", Wait: time.Minute})
	testwait.Until(t, pushdtest.Timeout, time.Millisecond, func() error {
		if s.Entered(w.Name()) == 0 {
			return errors.New("no poll has reached the server")
		}
		return nil
	})
	ev := s.Publish(t, "r", "ann", "hello")
	evs := w.WaitFor(t, "the message", func(evs []protocol.Event) bool { return len(evs) == 1 })
	if evs[0].Seq != ev.Seq || w.Polls() < 1 {
		t.Fatalf("saw %s after %d polls", pushdtest.Summary(evs), w.Polls())
	}
}

func TestAnswersAndErrors(t *testing.T) {
	s := pushdtest.Start(t, server.Config{})
	a := s.Post(t, "/v1/rooms/r/messages", `{"user":"ann"}`)
	if a.Status != http.StatusBadRequest || a.Error(t).Code != protocol.CodeEmptyText {
		t.Fatalf("a message without text: %d %s", a.Status, a.Body)
	}
	var p protocol.Presence
	s.Expect(t, http.MethodGet, "/v1/rooms/r/presence", "", http.StatusOK, &p)
	if got := s.Presence(t, "r"); len(got) != 0 {
		t.Fatalf("presence of an empty room: %v", got)
	}
	if _, err := s.Metric(t, "pushd_no_such_metric"); err == nil {
		t.Fatal("a metric that does not exist was found")
	}
}

func TestErrorAnswersAreStrict(t *testing.T) {
	s := pushdtest.Start(t, server.Config{})
	a := s.Post(t, "/v1/rooms/r/messages", `{"user":"ann"}`)
	if d := a.WantError(t, http.StatusBadRequest, protocol.CodeEmptyText); d.Message == "" {
		t.Fatalf("error %+v without a message", d)
	}
	if code := a.Code(t); code != protocol.CodeEmptyText {
		t.Fatalf("Code = %q", code)
	}
	if code := s.Get(t, "/healthz").Code(t); code != "" {
		t.Fatalf("Code of a success = %q", code)
	}
}

func TestTrySubscribeReturnsARefusal(t *testing.T) {
	s := pushdtest.Start(t, server.Config{})
	for _, kind := range []string{pushdtest.WS, pushdtest.SSE} {
		var refused *pushdtest.RefusedError
		if sub, err := s.TrySubscribe(kind, pushdtest.TaskPath("tnosuchtask"), pushdtest.SubOptions{Since: "0"}); err == nil {
			sub.Close()
			t.Fatalf("%s: a subscription to an unknown task was taken", kind)
		} else if !errors.As(err, &refused) || refused.Status != http.StatusNotFound {
			t.Fatalf("%s: %v; want a 404 refusal", kind, err)
		}
	}
}

func TestPollAsyncAnswersWhenPublished(t *testing.T) {
	s := pushdtest.Start(t, server.Config{})
	head := s.Head(t, pushdtest.RoomPath("r"))
	polling := s.PollAsync(t, pushdtest.RoomPath("r"), "wait=20s&since="+head.String())
	s.WaitConnections(t, "longpoll", 1)
	ev := s.Publish(t, "r", "ann", "wake")
	got, ok := testwait.Recv(t, pushdtest.Timeout, polling, "answer of the poll")
	if !ok {
		t.Fatal("the poll failed")
	}
	pushdtest.CheckMessages(t, got.Events, ev.Epoch, ev.Seq, []string{"wake"})
}

func TestTasksAndWatchers(t *testing.T) {
	s := pushdtest.Start(t, server.Config{})
	task := s.StartTask(t, `{"kind":"external","total":4}`)
	w := s.Watch(t, pushdtest.LongPoll, pushdtest.TaskPath(task.ID), pushdtest.SubOptions{Since: "0"})
	s.WaitTask(t, task.ID, "running", func(tk protocol.Task) bool { return tk.State == protocol.TaskRunning })
	w.WaitInFlight(t, "the running state", func(evs []protocol.Event) bool {
		return len(evs) > 0 && evs[len(evs)-1].Task.State == protocol.TaskRunning
	})
	s.Report(t, task.ID, `{"done":4,"state":"succeeded"}`)
	if final := w.WaitFinal(t, task.ID); final.State != protocol.TaskSucceeded || final.Done != 4 {
		t.Fatalf("final state %+v", final)
	}
	if got := s.Task(t, task.ID); got.State != protocol.TaskSucceeded {
		t.Fatalf("GET shows %+v", got)
	}
}

func TestStopTakesTheServerAway(t *testing.T) {
	s := pushdtest.Start(t, server.Config{})
	s.Stop(t)
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/healthz", nil)
	if resp, err := s.Client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("a request after Stop got %d", resp.StatusCode)
	}
	addr := pushdtest.FreeAddr(t)
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("FreeAddr = %q; want a loopback address", addr)
	}
}
