package server

import (
	"cmp"
	"context"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pushd/push/protocol"
)

// The stats: what an operator asks of a running server (GET
// /v1/admin/stats, the stats stream, pushd top). A sampler takes the
// server's figures once a second, but only while someone looks: a client
// asked for them within statsLinger, or watches the stats stream, or
// another node of the cluster asked. An idle server pays nothing. Each
// sample computes its rates against the one before. What it reads on the
// hot path is kept there without locks: each subscription's position and
// the events handed to it are atomics it updates once per batch
// (subscription.count), a store append's time goes into a histogram of
// atomics, and the rest (publishes, deliveries, drops) are the Prometheus
// counters of metrics.go.
//
// The stats stream lives in a hub of its own over a memory store that
// keeps the last protocol.StatsHistory snapshots: it is served on every
// transport like any stream, and nothing of it reaches the event store.

// statsInterval is how often the sampler samples while someone looks.
const statsInterval = time.Second

// statsLinger is how long the sampler goes on after the last request for
// stats, so that a poller (a long poll, a script) finds rates ready.
const statsLinger = time.Minute

// latencyWindow is how many samples the append quantiles cover.
const latencyWindow = 10

// sampler takes the server's figures while someone looks (see above). Its
// goroutine runs only then: the first ask starts it, and it ends once
// nobody has looked for statsLinger.
type sampler struct {
	s        *Server
	ctx      context.Context // ends with the server
	peers    StatsPeers      // nil: this server is alone
	interval time.Duration
	node     string
	host     string
	pid      int
	started  time.Time

	mu        sync.Mutex
	idle      bool      // no goroutine samples
	asked     time.Time // when a client last asked
	peerAsked time.Time // when another node last asked
	last      protocol.Stats
	lastAt    time.Time
	rated     bool          // last has rates: a sample came just before it
	fresh     chan struct{} // closed and replaced at each sample
	merged    *protocol.Stats
	mergedAt  time.Time

	// The sampling goroutine's own.
	prev   *statsCounters
	window []latencyCounts // the append latencies of the last samples
}

// statsCounters are the counts one sample takes, for the next one's rates.
type statsCounters struct {
	at                   time.Time
	published, delivered uint64
	appends              uint64
	cpuTime              time.Duration
	streams              map[string]streamCounters
}

// streamCounters are a stream's counts at a sample.
type streamCounters struct{ head, sent uint64 }

func newSampler(ctx context.Context, s *Server, peers StatsPeers, interval time.Duration) *sampler {
	host, _ := os.Hostname()
	sm := &sampler{s: s, ctx: ctx, peers: peers, interval: interval, host: host, pid: os.Getpid(), started: time.Now(),
		idle: true, fresh: make(chan struct{})}
	sm.node = host
	if peers != nil {
		sm.node = peers.Node()
	}
	return sm
}

// ask records that someone wants stats (a peer: another node), and starts
// the sampling goroutine if none runs.
func (sm *sampler) ask(peer bool) {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if peer {
		sm.peerAsked = time.Now()
	} else {
		sm.asked = time.Now()
	}
	if sm.idle && sm.s.goBackground(sm.run) {
		sm.idle = false
	}
}

// wanted says whether anyone looks at now: a client (who also wants the
// merged stats published) or only other nodes. When nobody does, the
// sampler is idle from then on, under the lock ask takes, so an ask
// either is seen here or starts a new goroutine.
func (sm *sampler) wanted(now time.Time) (client, any bool) {
	watched := sm.s.statsHub.pushing(protocol.StatsStream) > 0
	sm.mu.Lock()
	defer sm.mu.Unlock()
	client = watched || now.Sub(sm.asked) < statsLinger
	any = client || now.Sub(sm.peerAsked) < statsLinger
	if !any {
		sm.idle, sm.rated, sm.merged = true, false, nil
	}
	return client, any
}

// run samples at once and then once per interval while anyone looks, and
// publishes the merged stats on the stats stream while a client does. It
// returns when nobody looks, or when the server shuts down.
func (sm *sampler) run() {
	ticker := time.NewTicker(sm.interval)
	defer ticker.Stop()
	sm.prev, sm.window = nil, nil
	for first := true; ; first = false {
		if !first {
			select {
			case <-sm.ctx.Done():
				return
			case <-ticker.C:
			}
		}
		now := time.Now()
		client, any := sm.wanted(now)
		if !any {
			return
		}
		local, rated := sm.sample(sm.ctx, now)
		if !client || !rated {
			continue
		}
		merged := sm.gather(sm.ctx, local)
		sm.mu.Lock()
		sm.merged, sm.mergedAt = &merged, time.Now()
		sm.mu.Unlock()
		ev := protocol.Event{Type: protocol.TypeStats, Stats: &merged}
		if _, err := sm.s.statsHub.Publish(sm.ctx, protocol.StatsStream, ev); err != nil && sm.ctx.Err() == nil {
			sm.s.log.Warn("publish stats", "err", err)
		}
	}
}

// latest returns this server's latest sample with rates, waiting for one
// when there is none yet (the sampler was idle): about an interval.
func (sm *sampler) latest(ctx context.Context, peer bool) (protocol.Stats, error) {
	sm.ask(peer)
	for {
		sm.mu.Lock()
		if sm.rated && time.Since(sm.lastAt) < 2*sm.interval {
			st := sm.last
			sm.mu.Unlock()
			return st, nil
		}
		fresh := sm.fresh
		sm.mu.Unlock()
		select {
		case <-fresh:
		case <-ctx.Done():
			return protocol.Stats{}, ctx.Err()
		}
	}
}

// snapshot returns the stats of every node, merged: the ones last
// published when they are recent, else gathered now.
func (sm *sampler) snapshot(ctx context.Context) (protocol.Stats, error) {
	sm.ask(false)
	sm.mu.Lock()
	if sm.merged != nil && time.Since(sm.mergedAt) < sm.interval {
		st := *sm.merged
		sm.mu.Unlock()
		return st, nil
	}
	sm.mu.Unlock()
	local, err := sm.latest(ctx, false)
	if err != nil {
		return protocol.Stats{}, err
	}
	return sm.gather(ctx, local), nil
}

// LocalStats implements StatsSource: this server's latest figures.
func (sm *sampler) LocalStats(ctx context.Context) (protocol.Stats, error) {
	return sm.latest(ctx, true)
}

// gather merges local with the other nodes' latest stats, and counts who
// is present in each room listed across the cluster.
func (sm *sampler) gather(ctx context.Context, local protocol.Stats) protocol.Stats {
	if sm.peers == nil {
		return local
	}
	ctx, cancel := context.WithTimeout(ctx, 3*sm.interval)
	defer cancel()
	merged := mergeStats(append([]protocol.Stats{local}, sm.peers.GatherStats(ctx)...))
	for i, st := range merged.Streams {
		if room, ok := strings.CutPrefix(st.Stream, protocol.RoomStream("")); ok {
			if users, err := sm.s.presence.present(ctx, room); err == nil {
				merged.Streams[i].Present = len(users)
			}
		}
	}
	return merged
}

// sample takes this server's figures at now, and says whether they have
// rates (a sample came just before).
func (sm *sampler) sample(ctx context.Context, now time.Time) (protocol.Stats, bool) {
	s := sm.s
	prev := sm.prev
	if prev != nil && now.Sub(prev.at) > 3*sm.interval {
		prev = nil // too old to say what happened in the last second
	}
	cur := &statsCounters{at: now, streams: make(map[string]streamCounters), cpuTime: cpuTime()}
	var drops uint64
	cur.published, drops = s.metrics.totals()
	appends := s.metrics.appends.read()
	cur.appends = appends.total()
	var dt time.Duration
	if prev != nil {
		dt = now.Sub(prev.at)
	}
	rate := func(now, before uint64) float64 {
		if prev == nil || now < before || dt <= 0 {
			return 0
		}
		return float64(now-before) / dt.Seconds()
	}

	views, delivered := s.tracker.view()
	cur.delivered = delivered
	streams := s.hub.list()
	all := make([]protocol.StreamStats, 0, len(streams))
	var lagging []protocol.SubscriberStats
	for _, st := range streams {
		head := st.published.Load()
		v, ok := views[st]
		if !ok {
			v.sent = st.handedGone.Load() // none open now
		}
		cur.streams[st.name] = streamCounters{head: head, sent: v.sent}
		ss := protocol.StreamStats{Stream: st.name, Subscribers: len(v.subs), Head: head}
		if prev != nil {
			if p, ok := prev.streams[st.name]; ok {
				ss.EventsIn, ss.DeliveriesOut = rate(head, p.head), rate(v.sent, p.sent)
			}
		}
		if room, ok := strings.CutPrefix(st.name, protocol.RoomStream("")); ok {
			ss.Present = s.presence.count(room)
		}
		for _, sv := range v.subs {
			l := lag(sv.sub, head)
			ss.MaxLag = max(ss.MaxLag, l)
			if l > 0 {
				lagging = append(lagging, protocol.SubscriberStats{Stream: st.name, Transport: sv.info.transport,
					Addr: sv.info.addr, User: sv.info.user, Lag: l, Since: sv.info.since, Node: sm.node})
			}
		}
		all = append(all, ss)
	}
	sortSubscribers(lagging)
	total := len(all)
	sortStreams(all)

	// The append latencies of the last latencyWindow samples.
	sm.window = append(sm.window, appends)
	if len(sm.window) > latencyWindow+1 {
		sm.window = sm.window[1:]
	}
	recent := appends.since(sm.window[0])
	node := protocol.NodeStats{Node: sm.node, Host: sm.host, PID: sm.pid, Started: sm.started,
		Connections: s.tracker.connections(), SlowDrops: drops, MaxLag: s.cfg.MaxLag,
		Store:   protocol.StoreStats{AppendP50: millis(recent.quantile(0.5)), AppendP99: millis(recent.quantile(0.99))},
		Process: processStats()}
	if prev != nil {
		node.EventsIn, node.DeliveriesOut = rate(cur.published, prev.published), rate(cur.delivered, prev.delivered)
		node.Store.Appends = rate(cur.appends, prev.appends)
		node.Process.CPU = cpuBusy(prev.cpuTime, cur.cpuTime, dt)
	} else {
		node.Process.CPU = -1
	}
	sm.probe(ctx, &node.Store)

	st := protocol.Stats{Time: now.UTC(), Nodes: []protocol.NodeStats{node}, Connections: node.Connections,
		EventsIn: node.EventsIn, DeliveriesOut: node.DeliveriesOut, SlowDrops: drops,
		Streams: all[:min(total, protocol.MaxStatsStreams)], StreamsTotal: total,
		Lagging: lagging[:min(len(lagging), protocol.MaxStatsLagging)], Tasks: sm.tasks()}
	if st.Lagging == nil {
		st.Lagging = []protocol.SubscriberStats{}
	}
	sm.prev = cur
	sm.mu.Lock()
	sm.last, sm.lastAt, sm.rated = st, time.Now(), prev != nil
	close(sm.fresh)
	sm.fresh = make(chan struct{})
	sm.mu.Unlock()
	return st, prev != nil
}

// probe times what the store's appends wait for, if the store says.
func (sm *sampler) probe(ctx context.Context, out *protocol.StoreStats) {
	p, ok := sm.s.store.(StoreProber)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, sm.interval)
	defer cancel()
	what, took, err := p.Probe(ctx)
	out.Probe, out.ProbeMS = what, millis(took)
	if err != nil {
		out.ProbeError = err.Error()
	}
}

// tasks counts this server's tasks by state and lists the live ones,
// running first, then queued, newest first.
func (sm *sampler) tasks() protocol.TaskStats {
	out := protocol.TaskStats{ByState: map[protocol.TaskState]int{protocol.TaskQueued: 0, protocol.TaskRunning: 0,
		protocol.TaskSucceeded: 0, protocol.TaskFailed: 0, protocol.TaskCancelled: 0}, Live: []protocol.Task{}}
	for _, t := range sm.s.tasks.List() {
		out.ByState[t.State]++
		if !t.State.Final() {
			out.Live = append(out.Live, t)
		}
	}
	sortTasks(out.Live)
	out.Live = out.Live[:min(len(out.Live), protocol.MaxStatsTasks)]
	return out
}

// sortTasks puts running tasks before queued ones, each newest first.
func sortTasks(ts []protocol.Task) {
	slices.SortStableFunc(ts, func(a, b protocol.Task) int {
		return cmp.Or(cmp.Compare(stateRank(a.State), stateRank(b.State)), b.Created.Compare(a.Created), cmp.Compare(a.ID, b.ID))
	})
}

func stateRank(s protocol.TaskState) int {
	if s == protocol.TaskRunning {
		return 0
	}
	return 1
}

// sortStreams puts the busiest streams first: most deliveries, then most
// events in, then most subscribers, then by name.
func sortStreams(ss []protocol.StreamStats) {
	slices.SortFunc(ss, func(a, b protocol.StreamStats) int {
		return cmp.Or(cmp.Compare(b.DeliveriesOut, a.DeliveriesOut), cmp.Compare(b.EventsIn, a.EventsIn),
			cmp.Compare(b.Subscribers, a.Subscribers), cmp.Compare(a.Stream, b.Stream))
	})
}

// millis is d in milliseconds.
func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// list returns the streams in memory.
func (h *Hub) list() []*stream {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*stream, 0, len(h.streams))
	for _, s := range h.streams {
		out = append(out, s)
	}
	return out
}

// lookup returns the named stream if it is in memory, else nil.
func (h *Hub) lookup(name string) *stream {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.streams[name]
}

// pushing returns the streaming (WebSocket, SSE) subscribers of the named
// stream.
func (h *Hub) pushing(name string) int64 {
	if s := h.lookup(name); s != nil {
		return s.pushers.Load()
	}
	return 0
}
