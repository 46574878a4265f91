package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
)

// A task killed with its server ends failed at the progress its watchers
// last saw, never less: progress does not go back across a crash. Its
// total is known from the start.
func TestInterruptedTaskKeepsItsProgress(t *testing.T) {
	data := t.TempDir()
	p := startPushd(t, "--data", data)
	task := p.StartTask(t, `{"kind":"demo","name":"long","total":1000,"interval":"20ms"}`)
	if task.Total != 1000 {
		t.Fatalf("start task: total %d; want the total asked for, 1000", task.Total)
	}
	// Let it get going, then read what a watcher has seen of it.
	var seen protocol.Task
	testwait.Until(t, 20*time.Second, 20*time.Millisecond, func() error {
		for _, ev := range p.History(t, pushdtest.TaskPath(task.ID)) {
			if ev.Task != nil && ev.Task.Done > seen.Done {
				seen = *ev.Task
			}
		}
		if seen.Done < 40 {
			return fmt.Errorf("the task reached only %d of 1000 steps", seen.Done)
		}
		return nil
	})
	p.Kill(t)

	p = startPushd(t, "--data", data)
	got := p.Task(t, task.ID)
	if got.State != protocol.TaskFailed || got.Message != "interrupted by server restart" {
		t.Fatalf("task after restart = %s %q; want failed \"interrupted by server restart\"", got.State, got.Message)
	}
	if got.Done < seen.Done || got.Percent < seen.Percent || got.Total != 1000 {
		t.Fatalf("task after restart at %d/%d (%.1f%%); watchers had seen %d/%d (%.1f%%): progress went back", got.Done, got.Total, got.Percent, seen.Done, seen.Total, seen.Percent)
	}
}
