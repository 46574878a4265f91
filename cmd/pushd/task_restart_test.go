package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
)

// A task killed with its server ends failed at the progress its watchers
// last saw, never less: progress does not go back across a crash. Its
// total is known from the start.
func TestInterruptedTaskKeepsItsProgress(t *testing.T) {
	data := t.TempDir()
	p := startPushd(t, "--data", data)
	resp, err := http.Post(p.url+"/v1/tasks", "application/json", strings.NewReader(`{"kind":"demo","name":"long","total":1000,"interval":"20ms"}`))
	if err != nil {
		t.Fatal(err)
	}
	var task protocol.Task
	_ = json.NewDecoder(resp.Body).Decode(&task)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || task.Total != 1000 {
		t.Fatalf("start task: %d, total %d; want 201 and the total asked for, 1000", resp.StatusCode, task.Total)
	}
	// Let it get going, then read what a watcher has seen of it.
	var seen protocol.Task
	testwait.Until(t, 20*time.Second, 20*time.Millisecond, func() error {
		for _, ev := range poll(t, p.url+"/v1/tasks/"+task.ID+"/events?since=0&wait=0").Events {
			if ev.Task != nil && ev.Task.Done > seen.Done {
				seen = *ev.Task
			}
		}
		if seen.Done < 40 {
			return fmt.Errorf("the task reached only %d of 1000 steps", seen.Done)
		}
		return nil
	})
	p.kill(t)

	p = startPushd(t, "--data", data)
	var got protocol.Task
	getJSON(t, p.url+"/v1/tasks/"+task.ID, &got)
	if got.State != protocol.TaskFailed || got.Message != "interrupted by server restart" {
		t.Fatalf("task after restart = %s %q; want failed \"interrupted by server restart\"", got.State, got.Message)
	}
	if got.Done < seen.Done || got.Percent < seen.Percent || got.Total != 1000 {
		t.Fatalf("task after restart at %d/%d (%.1f%%); watchers had seen %d/%d (%.1f%%): progress went back", got.Done, got.Total, got.Percent, seen.Done, seen.Total, seen.Percent)
	}
}
