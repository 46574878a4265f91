package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushd/push/internal/natstest"
	"github.com/pushd/push/protocol"
)

// Two pushd processes on one NATS serve one room: what is published on
// either is read on both, and when one is killed the other still has
// every acknowledged event.
func TestTwoProcessesShareARoom(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two pushd processes")
	}
	ns := natstest.Start(t)
	a := startPushd(t, "--nats", ns.URL())
	b := startPushd(t, "--nats", ns.URL())
	var acked []protocol.Event
	for i := range 10 {
		node := a
		if i%2 == 1 {
			node = b
		}
		acked = append(acked, publish(t, node.url, "shared", fmt.Sprintf("m%d", i)))
	}
	a.kill(t)
	p := poll(t, b.url+"/v1/rooms/shared/events?since=0&wait=5s")
	if len(p.Events) != len(acked) {
		t.Fatalf("node b has %d events, want %d", len(p.Events), len(acked))
	}
	for i, ev := range p.Events {
		if ev.Seq != acked[i].Seq || ev.Text != acked[i].Text || ev.Epoch != acked[i].Epoch {
			t.Fatalf("event %d on b: %d %q, want %d %q as acknowledged", i, ev.Seq, ev.Text, acked[i].Seq, acked[i].Text)
		}
	}
}

// A task started on one process is seen and cancelled through the other,
// and a user connected to both is present once on each.
func TestTwoProcessesShareTasksAndPresence(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two pushd processes")
	}
	ns := natstest.Start(t)
	a := startPushd(t, "--nats", ns.URL())
	b := startPushd(t, "--nats", ns.URL())

	var task protocol.Task
	postJSON(t, a.url+"/v1/tasks", `{"kind":"demo","name":"long","total":1000,"interval":"1s"}`, http.StatusCreated, &task)
	var got protocol.Task
	getJSON(t, b.url+"/v1/tasks/"+task.ID, &got)
	if got.ID != task.ID || got.State.Final() {
		t.Fatalf("task on b: %+v; want %s, live", got, task.ID)
	}
	postJSON(t, b.url+"/v1/tasks/"+task.ID+"/cancel", `{}`, http.StatusAccepted, &got)
	deadline := time.Now().Add(10 * time.Second)
	for got.State != protocol.TaskCancelled {
		if time.Now().After(deadline) {
			t.Fatalf("task on a after cancel from b: %s", got.State)
		}
		time.Sleep(50 * time.Millisecond)
		getJSON(t, a.url+"/v1/tasks/"+task.ID, &got)
	}

	// Long polls hold the user in the room while they wait.
	var polls sync.WaitGroup
	for _, p := range []*proc{a, b} {
		polls.Go(func() {
			resp, err := http.Get(p.url + "/v1/rooms/meet/events?user=ann&wait=5s")
			if err == nil {
				resp.Body.Close()
			}
		})
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		var pres struct{ Users []string }
		getJSON(t, b.url+"/v1/rooms/meet/presence", &pres)
		if len(pres.Users) == 1 && pres.Users[0] == "ann" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("presence on b: %v; want [ann]", pres.Users)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Each long poll joined before it waited, and ends with the login or
	// its wait: once both are over, every login there will be is in the
	// log.
	polls.Wait()
	p := poll(t, a.url+"/v1/rooms/meet/events?since=0&wait=5s")
	logins := 0
	for _, ev := range p.Events {
		if ev.Type == protocol.TypeLogin {
			logins++
		}
	}
	if logins != 1 {
		t.Fatalf("%d logins for one user on two servers; want 1: %+v", logins, p.Events)
	}
}

func postJSON(t *testing.T, url, body string, want int, out any) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("POST %s: %d, want %d", url, resp.StatusCode, want)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

func getJSON(t *testing.T, url string, out any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}
