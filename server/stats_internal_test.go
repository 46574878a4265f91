package server

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pushd/push/protocol"
)

// Merging the stats of nodes: counts and deliveries summed, a stream's
// events in and head its own (the most any node saw), the furthest behind
// of all subscribers, every node's tasks.
func TestMergeStats(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a := protocol.Stats{Time: t0, Nodes: []protocol.NodeStats{{Node: "b"}},
		Connections: map[string]int{"ws": 2, "sse": 1}, EventsIn: 10, DeliveriesOut: 30, SlowDrops: 1, StreamsTotal: 2,
		Streams: []protocol.StreamStats{
			{Stream: "room/lobby", Subscribers: 2, Present: 2, EventsIn: 10, DeliveriesOut: 20, Head: 100, MaxLag: 3},
			{Stream: "tasks", Subscribers: 1, DeliveriesOut: 10, Head: 7},
		},
		Lagging: []protocol.SubscriberStats{{Stream: "room/lobby", Lag: 3, Node: "b"}},
		Tasks: protocol.TaskStats{ByState: map[protocol.TaskState]int{protocol.TaskRunning: 1},
			Live: []protocol.Task{{ID: "t1", State: protocol.TaskRunning, Created: t0}}}}
	b := protocol.Stats{Time: t0.Add(time.Second), Nodes: []protocol.NodeStats{{Node: "a"}},
		Connections: map[string]int{"ws": 1, "longpoll": 4}, EventsIn: 0, DeliveriesOut: 5, SlowDrops: 2, StreamsTotal: 1,
		Streams: []protocol.StreamStats{
			{Stream: "room/lobby", Subscribers: 5, Present: 3, EventsIn: 9, DeliveriesOut: 45, Head: 99, MaxLag: 8},
		},
		Lagging: []protocol.SubscriberStats{{Stream: "room/lobby", Lag: 8, Node: "a"}, {Stream: "room/lobby", Lag: 1, Node: "a"}},
		Tasks: protocol.TaskStats{ByState: map[protocol.TaskState]int{protocol.TaskQueued: 1, protocol.TaskRunning: 1},
			Live: []protocol.Task{{ID: "t3", State: protocol.TaskQueued, Created: t0.Add(time.Minute)}, {ID: "t2", State: protocol.TaskRunning, Created: t0.Add(time.Second)}}}}
	m := mergeStats([]protocol.Stats{a, b, {Nodes: []protocol.NodeStats{{Node: "c", Error: "no answer"}}}})

	if !m.Time.Equal(b.Time) || len(m.Nodes) != 3 || m.Nodes[0].Node != "a" || m.Nodes[2].Error == "" {
		t.Errorf("time %v, nodes %+v; want the latest time and a, b, c (c's error kept)", m.Time, m.Nodes)
	}
	if got := fmt.Sprint(m.Connections); got != "map[longpoll:4 sse:1 ws:3]" {
		t.Errorf("connections %s", got)
	}
	if m.EventsIn != 10 || m.DeliveriesOut != 35 || m.SlowDrops != 3 || m.StreamsTotal != 2 {
		t.Errorf("in %v, out %v, drops %d, streams %d; want 10, 35, 3, 2", m.EventsIn, m.DeliveriesOut, m.SlowDrops, m.StreamsTotal)
	}
	want := []protocol.StreamStats{
		{Stream: "room/lobby", Subscribers: 7, Present: 3, EventsIn: 10, DeliveriesOut: 65, Head: 100, MaxLag: 8},
		{Stream: "tasks", Subscribers: 1, DeliveriesOut: 10, Head: 7},
	}
	if fmt.Sprint(m.Streams) != fmt.Sprint(want) {
		t.Errorf("streams %+v; want %+v", m.Streams, want)
	}
	if len(m.Lagging) != 3 || m.Lagging[0].Lag != 8 || m.Lagging[1].Lag != 3 || m.Lagging[2].Lag != 1 {
		t.Errorf("lagging %+v; want lags 8, 3, 1", m.Lagging)
	}
	var ids []string
	for _, tk := range m.Tasks.Live {
		ids = append(ids, tk.ID)
	}
	if fmt.Sprint(ids) != "[t2 t1 t3]" || m.Tasks.ByState[protocol.TaskRunning] != 2 || m.Tasks.ByState[protocol.TaskQueued] != 1 {
		t.Errorf("tasks %+v, live %v; want 2 running, 1 queued, live t2 t1 (running, newest first) then t3", m.Tasks.ByState, ids)
	}
}

// The stats stream keeps the last StatsHistory snapshots, in memory.
func TestStatsHistoryBounded(t *testing.T) {
	h := newStatsHub(Config{})
	defer func() {
		h.shutdown()
		h.store.Close()
	}()
	ctx := context.Background()
	for range 3 * protocol.StatsHistory {
		if _, err := h.Publish(ctx, protocol.StatsStream, protocol.Event{Type: protocol.TypeStats, Stats: &protocol.Stats{}}); err != nil {
			t.Fatal(err)
		}
	}
	info, err := h.store.Info(ctx, protocol.StatsStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.Last - info.First + 1; n != protocol.StatsHistory || info.Last != 3*protocol.StatsHistory {
		t.Errorf("the stream holds %d to %d; want the last %d", info.First, info.Last, protocol.StatsHistory)
	}
}

// Append latencies: quantiles fall in the right bucket, and a reading
// minus an earlier one holds what came between.
func TestLatencyQuantiles(t *testing.T) {
	var l latencies
	for range 98 {
		l.observe(300 * time.Microsecond) // bucket 256-512 µs
	}
	earlier := l.read()
	l.observe(3 * time.Millisecond) // 2048-4096 µs
	l.observe(5 * time.Second)
	all := l.read()
	if p50 := all.quantile(0.5); p50 < 256*time.Microsecond || p50 > 512*time.Microsecond {
		t.Errorf("p50 %v; want within 256 to 512 µs", p50)
	}
	if p99 := all.quantile(0.99); p99 < 2048*time.Microsecond || p99 > 4096*time.Microsecond {
		t.Errorf("p99 %v; want within 2.048 to 4.096 ms", p99)
	}
	recent := all.since(earlier)
	if recent.total() != 2 || recent.quantile(1) < 4*time.Second {
		t.Errorf("since the earlier reading: %d durations, max %v; want 2, the largest 5 s", recent.total(), recent.quantile(1))
	}
	var none latencyCounts
	if none.quantile(0.5) != 0 {
		t.Errorf("the quantile of nothing is %v", none.quantile(0.5))
	}
}

// BenchmarkStatsCount is what the stats add to each batch a subscriber
// takes (subscription.count): an atomic store of its position and an
// atomic add of the events handed out, on its own subscription, so no
// two subscribers touch the same memory. Compare with BenchmarkFanout's
// ns/delivery.
func BenchmarkStatsCount(b *testing.B) {
	sub := &subscription{buf: make([]*entry, 1)}
	for b.Loop() {
		sub.cursor++
		sub.count()
	}
}
