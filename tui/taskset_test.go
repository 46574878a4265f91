package tui

import (
	"testing"
	"time"

	"github.com/pushd/push/protocol"
)

func TestTaskRateAndETA(t *testing.T) {
	var s taskSet
	tk := task("t1", "a", protocol.TaskRunning, 0, 100, 0)
	s.Apply(tk, t0)
	v, _ := s.Get("t1")
	if v.Rate() != 0 {
		t.Fatalf("rate from one sample: %v", v.Rate())
	}
	if _, ok := v.ETA(); ok {
		t.Fatal("ETA without a rate")
	}
	for i := 1; i <= 10; i++ {
		tk.Done = int64(i * 5)
		s.Apply(tk, t0.Add(time.Duration(i)*time.Second))
	}
	if r := v.Rate(); r != 5 {
		t.Fatalf("rate = %v, want 5/s", r)
	}
	if len(v.samples) > 7 {
		t.Fatalf("%d samples kept; the window is %v", len(v.samples), rateWindow)
	}
	if eta, ok := v.ETA(); !ok || eta != 10*time.Second {
		t.Fatalf("ETA = %v %v, want 10s", eta, ok)
	}
	server := 3.0
	tk.ETASeconds = &server
	s.Apply(tk, t0.Add(11*time.Second))
	if eta, _ := v.ETA(); eta != 3*time.Second {
		t.Fatalf("ETA = %v; the server's estimate comes first", eta)
	}
	// Going back (a restarted external task) starts the rate over.
	tk.Done, tk.ETASeconds = 1, nil
	s.Apply(tk, t0.Add(12*time.Second))
	if v.Rate() != 0 {
		t.Fatalf("rate after going back = %v", v.Rate())
	}
	// Finished: the average over the run, and how long it took.
	done := task("t1", "a", protocol.TaskSucceeded, 100, 100, 0)
	s.Apply(done, t0.Add(5*time.Second))
	if v.Rate() != 20 {
		t.Fatalf("final rate = %v, want 20/s", v.Rate())
	}
	if d, ok := v.Took(); !ok || d != 5*time.Second {
		t.Fatalf("took %v %v", d, ok)
	}
	if _, ok := v.ETA(); ok {
		t.Fatal("ETA of a finished task")
	}
}

func TestTaskStartIsASample(t *testing.T) {
	var s taskSet
	s.Apply(task("t1", "a", protocol.TaskRunning, 30, 100, 0), t0.Add(3*time.Second))
	v, _ := s.Get("t1")
	if v.Rate() != 10 {
		t.Fatalf("rate = %v, want 10/s from the start time", v.Rate())
	}
}

func TestTaskFraction(t *testing.T) {
	cases := []struct {
		t    protocol.Task
		want float64
	}{
		{protocol.Task{Done: 5, Total: 10}, 0.5},
		{protocol.Task{Done: 15, Total: 10}, 1},
		{protocol.Task{Percent: 25}, 0.25},
		{protocol.Task{State: protocol.TaskSucceeded}, 1},
		{protocol.Task{State: protocol.TaskRunning}, 0},
	}
	for _, tc := range cases {
		v := TaskView{Task: tc.t}
		if got := v.Fraction(); got != tc.want {
			t.Errorf("%+v: %v, want %v", tc.t, got, tc.want)
		}
	}
}

func TestTaskSetOrderAndReplace(t *testing.T) {
	var s taskSet
	s.Apply(task("t1", "old", protocol.TaskRunning, 1, 10, 0), time.Time{})
	s.Apply(task("t3", "new", protocol.TaskRunning, 1, 10, 2), time.Time{})
	s.Apply(task("t2", "mid", protocol.TaskQueued, 0, 10, 1), time.Time{})
	var ids []string
	for _, v := range s.All() {
		ids = append(ids, v.ID)
	}
	if got := ids; len(got) != 3 || got[0] != "t3" || got[1] != "t2" || got[2] != "t1" {
		t.Fatalf("order %v, want newest first", got)
	}
	if n := len(s.Live()); n != 3 {
		t.Fatalf("live %d", n)
	}
	s.Replace([]protocol.Task{task("t2", "mid", protocol.TaskSucceeded, 10, 10, 1)})
	if s.Len() != 1 || len(s.Live()) != 0 {
		t.Fatalf("after replace: %d tasks, %d live", s.Len(), len(s.Live()))
	}
	if _, ok := s.Get("t1"); ok {
		t.Fatal("a task not in the list is still there")
	}
}

func TestFormat(t *testing.T) {
	durations := map[time.Duration]string{
		-time.Second: "0.0s", 400 * time.Millisecond: "0.4s", 7 * time.Second: "7.0s", 42 * time.Second: "42s",
		65 * time.Second: "1m05s", 2*time.Hour + 3*time.Minute: "2h03m",
	}
	for d, want := range durations {
		if got := fmtDuration(d); got != want {
			t.Errorf("fmtDuration(%v) = %q, want %q", d, got, want)
		}
	}
	rates := map[float64]string{0: "-", 2.5: "2.5/s", 42: "42/s", 1500: "1.5k/s", 2.5e6: "2.5M/s"}
	for r, want := range rates {
		if got := fmtRate(r); got != want {
			t.Errorf("fmtRate(%v) = %q, want %q", r, got, want)
		}
	}
	if got := fmtPercent(0.999); got != " 99%" {
		t.Errorf("fmtPercent(0.999) = %q: never 100%% before the end", got)
	}
	if got := fmtCount(3, 0); got != "3" {
		t.Errorf("fmtCount(3, 0) = %q", got)
	}
}
