package server

import (
	"cmp"
	"slices"
	"time"

	"github.com/pushd/push/protocol"
)

// mergeStats merges the stats of several nodes, each with its own figures
// only, into the stats of them all: counts and rates summed, each stream's
// figures merged (events in and head are the stream's own, which every
// node that holds it sees: the most any node saw; subscribers and
// deliveries are each node's: summed), the furthest behind of all
// subscribers, and the tasks of every node (a task runs on one node).
// Present counts are each stream's largest; the caller counts them anew
// where it can.
func mergeStats(parts []protocol.Stats) protocol.Stats {
	out := protocol.Stats{Connections: map[string]int{}, Lagging: []protocol.SubscriberStats{},
		Tasks: protocol.TaskStats{ByState: map[protocol.TaskState]int{}, Live: []protocol.Task{}}}
	byName := map[string]*protocol.StreamStats{}
	var order []string
	for _, p := range parts {
		out.Time = maxTime(out.Time, p.Time)
		out.Nodes = append(out.Nodes, p.Nodes...)
		for k, n := range p.Connections {
			out.Connections[k] += n
		}
		out.EventsIn += p.EventsIn
		out.DeliveriesOut += p.DeliveriesOut
		out.SlowDrops += p.SlowDrops
		out.StreamsTotal = max(out.StreamsTotal, p.StreamsTotal)
		for _, st := range p.Streams {
			m, ok := byName[st.Stream]
			if !ok {
				c := st
				byName[st.Stream] = &c
				order = append(order, st.Stream)
				continue
			}
			m.Subscribers += st.Subscribers
			m.Present = max(m.Present, st.Present)
			m.EventsIn = max(m.EventsIn, st.EventsIn)
			m.DeliveriesOut += st.DeliveriesOut
			m.Head = max(m.Head, st.Head)
			m.MaxLag = max(m.MaxLag, st.MaxLag)
		}
		out.Lagging = append(out.Lagging, p.Lagging...)
		for state, n := range p.Tasks.ByState {
			out.Tasks.ByState[state] += n
		}
		out.Tasks.Live = append(out.Tasks.Live, p.Tasks.Live...)
	}
	slices.SortFunc(out.Nodes, func(a, b protocol.NodeStats) int { return cmp.Compare(a.Node, b.Node) })
	out.Streams = make([]protocol.StreamStats, 0, len(order))
	for _, name := range order {
		out.Streams = append(out.Streams, *byName[name])
	}
	// Every stream a node holds is listed unless it held more than the
	// listing takes: then the union is at least the largest total.
	out.StreamsTotal = max(out.StreamsTotal, len(out.Streams))
	sortStreams(out.Streams)
	out.Streams = out.Streams[:min(len(out.Streams), protocol.MaxStatsStreams)]
	sortSubscribers(out.Lagging)
	out.Lagging = out.Lagging[:min(len(out.Lagging), protocol.MaxStatsLagging)]
	sortTasks(out.Tasks.Live)
	out.Tasks.Live = out.Tasks.Live[:min(len(out.Tasks.Live), protocol.MaxStatsTasks)]
	return out
}

// mergeSubscribers merges several nodes' lists of one stream's
// subscribers, keeping the limit furthest behind.
func mergeSubscribers(stream string, parts []protocol.SubscriberList, limit int) protocol.SubscriberList {
	out := protocol.SubscriberList{Stream: stream, Subscribers: []protocol.SubscriberStats{}}
	for _, p := range parts {
		out.Head = max(out.Head, p.Head)
		out.Total += p.Total
		out.Subscribers = append(out.Subscribers, p.Subscribers...)
		out.Missing = append(out.Missing, p.Missing...)
	}
	sortSubscribers(out.Subscribers)
	out.Subscribers = out.Subscribers[:min(len(out.Subscribers), limit)]
	return out
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
