package protocol

import "time"

// TypeStats is the type of the events of the stats stream: each carries a
// Stats snapshot and nothing else of note. They are not stored for good:
// the stream keeps the last StatsHistory of them, in memory.
const TypeStats Type = "stats"

// StatsStream is the name of the operators' stream of Stats snapshots,
// served at /v1/admin/stats/events.
const StatsStream = "stats"

// Bounds of a Stats snapshot, so that one stays small whatever the server
// holds, and of the stats stream's history.
const (
	// MaxStatsStreams is the most streams a snapshot lists: the busiest.
	MaxStatsStreams = 100
	// MaxStatsLagging is the most subscribers a snapshot lists as the
	// furthest behind.
	MaxStatsLagging = 20
	// MaxStatsTasks is the most live tasks a snapshot lists.
	MaxStatsTasks = 20
	// MaxSubscribers is the most subscribers one answer of
	// /v1/admin/stats/subscribers lists, and its default.
	MaxSubscribers = 1000
	// StatsHistory is how many snapshots the stats stream keeps, one a
	// second: a subscriber from "0" gets the last minute at once.
	StatsHistory = 60
)

// Stats is what a server, or every node of a cluster merged, is doing: the
// body of GET /v1/admin/stats and the Stats of each event of the stats
// stream. Rates are per second, over the second before Time; latencies are
// in milliseconds. Counts are of subscriptions to rooms and the tasks
// stream: watchers of the stats stream are not counted.
type Stats struct {
	Time time.Time `json:"time"`
	// Nodes holds each server's own figures, sorted by Node: one without
	// a cluster. A node that did not answer has only Node and Error.
	Nodes []NodeStats `json:"nodes"`
	// Connections counts open subscriptions by transport ("ws", "sse",
	// and "longpoll" for waiting long polls), on every node.
	Connections map[string]int `json:"connections"`
	// EventsIn is the events the nodes appended per second (publishes,
	// logins and logouts, task progress), DeliveriesOut the events they
	// handed to subscribers per second.
	EventsIn      float64 `json:"events_in"`
	DeliveriesOut float64 `json:"deliveries_out"`
	// SlowDrops counts the subscribers told to reconnect for falling
	// more than their node's MaxLag behind, since each node started.
	SlowDrops uint64 `json:"slow_drops"`
	// Streams lists the busiest streams in memory (most deliveries, then
	// events in, then subscribers), at most MaxStatsStreams of the
	// StreamsTotal the nodes hold (a stream several nodes hold counts
	// once when none left any out).
	Streams      []StreamStats `json:"streams"`
	StreamsTotal int           `json:"streams_total"`
	// Lagging lists the subscribers furthest behind the head of their
	// stream (a lag above zero), most first, at most MaxStatsLagging.
	Lagging []SubscriberStats `json:"lagging"`
	// Tasks counts the tasks kept, by state, and lists the live ones.
	Tasks TaskStats `json:"tasks"`
}

// NodeStats is one server's own figures.
type NodeStats struct {
	// Node names the server in its cluster; without one, its host.
	Node    string    `json:"node"`
	Host    string    `json:"host,omitempty"`
	PID     int       `json:"pid,omitempty"`
	Started time.Time `json:"started,omitzero"`
	// Error says why the node's figures are missing (it did not answer).
	Error         string         `json:"error,omitempty"`
	Connections   map[string]int `json:"connections,omitempty"`
	EventsIn      float64        `json:"events_in"`
	DeliveriesOut float64        `json:"deliveries_out"`
	SlowDrops     uint64         `json:"slow_drops"`
	// MaxLag is the node's lag limit (pushd serve --max-lag).
	MaxLag  int          `json:"max_lag,omitempty"`
	Store   StoreStats   `json:"store"`
	Process ProcessStats `json:"process"`
}

// StreamStats is one stream's figures.
type StreamStats struct {
	// Stream is its name: "room/<name>" or "tasks".
	Stream      string `json:"stream"`
	Subscribers int    `json:"subscribers"`
	// Present is how many users are present (rooms).
	Present       int     `json:"present"`
	EventsIn      float64 `json:"events_in"`
	DeliveriesOut float64 `json:"deliveries_out"`
	// Head is the seq of the stream's newest event.
	Head uint64 `json:"head"`
	// MaxLag is the lag of its slowest subscriber, in events.
	MaxLag uint64 `json:"max_lag"`
}

// SubscriberStats is one subscription.
type SubscriberStats struct {
	Stream    string `json:"stream"`
	Transport string `json:"transport"`
	// Addr is the client's address as the server sees it (a proxy's, for
	// clients behind one).
	Addr string `json:"addr"`
	// User is the user present through it (?user=), or the token's user
	// on the tasks stream; empty when neither.
	User string `json:"user,omitempty"`
	// Lag is how many events the stream holds after the last one handed
	// to this subscriber.
	Lag uint64 `json:"lag"`
	// Since is when it connected (for a long poll: when the poll came).
	Since time.Time `json:"since"`
	// Node is the server it is connected to.
	Node string `json:"node,omitempty"`
}

// SubscriberList is the body of GET /v1/admin/stats/subscribers: one
// stream's subscribers, furthest behind first, at most the limit asked of
// the Total.
type SubscriberList struct {
	Stream      string            `json:"stream"`
	Head        uint64            `json:"head"`
	Total       int               `json:"total"`
	Subscribers []SubscriberStats `json:"subscribers"`
	// Missing names the nodes of a cluster that did not answer, and why.
	Missing []string `json:"missing,omitempty"`
}

// TaskStats counts tasks by state and lists the live ones (running, then
// queued), at most MaxStatsTasks.
type TaskStats struct {
	ByState map[TaskState]int `json:"by_state"`
	Live    []Task            `json:"live"`
}

// StoreStats is how the event store keeps up.
type StoreStats struct {
	// Appends is store appends per second (one append holds every publish
	// to a stream that arrived while the one before was under way).
	Appends float64 `json:"appends"`
	// AppendP50 and AppendP99 are the median and 99th percentile time of
	// an append over the last ten seconds, in milliseconds.
	AppendP50 float64 `json:"append_p50_ms"`
	AppendP99 float64 `json:"append_p99_ms"`
	// Probe names what the store's appends wait for, as timed once a
	// second: "fsync" (bolt), "nats round trip" (NATS); empty for the
	// memory store. ProbeMS is how long it took, ProbeError why it failed.
	Probe      string  `json:"probe,omitempty"`
	ProbeMS    float64 `json:"probe_ms,omitempty"`
	ProbeError string  `json:"probe_error,omitempty"`
}

// ProcessStats is the server process's use of the machine.
type ProcessStats struct {
	// Memory is what the Go runtime has mapped, in bytes; Heap the live
	// heap within it.
	Memory     uint64 `json:"memory_bytes"`
	Heap       uint64 `json:"heap_bytes"`
	Goroutines int    `json:"goroutines"`
	// CPU is the cores the process kept busy over the last second (1.0:
	// one core all the time), of Cores it may use; negative where the
	// system does not say.
	CPU   float64 `json:"cpu"`
	Cores int     `json:"cores"`
}
