package server_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
	"github.com/pushd/push/server/boltstore"
)

// The operators' view: GET /v1/admin/stats, its stream and the
// subscribers of a stream, who may see them, and each figure in them; the
// Prometheus figures at /metrics; and /readyz.

// statsPaths are the admin endpoints, each answered at once when allowed.
var statsPaths = []string{
	pushdtest.StatsSnapshotPath,
	pushdtest.StatsPath + "?wait=0",
	"/v1/admin/stats/subscribers?stream=room/lobby",
}

// With tokens, the stats need a token with the admin right.
func TestStatsNeedAdminToken(t *testing.T) {
	s := startOwned(t, server.Config{})
	for _, path := range statsPaths {
		if a := s.as["root"].Get(t, path); a.Status != http.StatusOK {
			t.Errorf("GET %s as an admin: %d %s", path, a.Status, a.Body)
		}
		refused(t, s.as["eve"], http.MethodGet, path, "", http.StatusForbidden, protocol.CodeForbidden, "pushd token --admin")
		if a := s.Get(t, path); a.Status != http.StatusUnauthorized {
			t.Errorf("GET %s without a token: %d %s; want 401", path, a.Status, a.Body)
		}
	}
}

// Without tokens, the stats answer only on loopback.
func TestStatsOpenServerOnlyOnLoopback(t *testing.T) {
	local := pushdtest.Start(t, server.Config{})
	remote := pushdtest.Start(t, server.Config{}, pushdtest.Wrap(func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.RemoteAddr = "192.0.2.7:40000" // as a client on another machine
			h.ServeHTTP(w, r)
		})
	}))
	for _, path := range statsPaths {
		if a := local.Get(t, path); a.Status != http.StatusOK {
			t.Errorf("GET %s from loopback: %d %s", path, a.Status, a.Body)
		}
		a := remote.Get(t, path)
		if e := a.Error(t); a.Status != http.StatusForbidden || !strings.Contains(e.Message, "only on loopback") {
			t.Errorf("GET %s from elsewhere: %d %s; want 403 saying only on loopback", path, a.Status, a.Body)
		}
	}
	// The rooms themselves are open to all.
	if a := remote.Get(t, pushdtest.RoomPath("lobby")+"?wait=0"); a.Status != http.StatusOK {
		t.Errorf("a room from elsewhere: %d %s", a.Status, a.Body)
	}
}

// Connections by transport, and each room's subscribers, present users
// and head.
func TestStatsConnectionsAndRooms(t *testing.T) {
	s := pushdtest.Start(t, server.Config{})
	users := map[string]string{pushdtest.WS: "ann", pushdtest.WSBatch: "bob", pushdtest.SSE: "carol"}
	for kind, user := range users {
		s.Subscribe(t, kind, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{User: user})
	}
	s.Subscribe(t, pushdtest.SSE, pushdtest.RoomPath("dev"), pushdtest.SubOptions{})
	s.Subscribe(t, pushdtest.WS, "/v1/tasks/events", pushdtest.SubOptions{})
	// The long poller is connected while it polls.
	lp := s.Subscribe(t, pushdtest.LongPoll, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{User: "dave", Wait: time.Minute})
	go func() {
		for {
			if _, err := lp.Read(t.Context()); err != nil {
				return
			}
		}
	}()
	last := s.Publish(t, "dev", "erin", "hello")

	st := s.WaitStats(t, func(st protocol.Stats) error {
		want := map[string]int{"ws": 3, "sse": 2, "longpoll": 1}
		if fmt.Sprint(st.Connections) != fmt.Sprint(want) {
			return fmt.Errorf("connections %v; want %v", st.Connections, want)
		}
		lobby, err := pushdtest.StreamStats(st, "room/lobby")
		if err != nil {
			return err
		}
		if lobby.Subscribers != 4 || lobby.Present != 4 {
			return fmt.Errorf("lobby has %d subscribers and %d present; want 4 and 4", lobby.Subscribers, lobby.Present)
		}
		dev, err := pushdtest.StreamStats(st, "room/dev")
		if err != nil {
			return err
		}
		if dev.Subscribers != 1 || dev.Present != 0 || dev.Head != last.Seq {
			return fmt.Errorf("dev %+v; want 1 subscriber, none present, head %d", dev, last.Seq)
		}
		tasks, err := pushdtest.StreamStats(st, "tasks")
		if err != nil || tasks.Subscribers != 1 {
			return fmt.Errorf("tasks stream %+v (%v); want 1 subscriber", tasks, err)
		}
		return nil
	})
	if st.StreamsTotal != 3 || len(st.Nodes) != 1 {
		t.Errorf("%d streams, %d nodes; want 3 and 1", st.StreamsTotal, len(st.Nodes))
	}
	if fmt.Sprint(st.Nodes[0].Connections) != fmt.Sprint(st.Connections) {
		t.Errorf("node's connections %v; the total says %v", st.Nodes[0].Connections, st.Connections)
	}
}

// The rates: over the snapshots of the stats stream, each rate times the
// time since the snapshot before adds up to what happened: events in to
// the stream's growth, deliveries out to the events handed to its
// subscribers (a long poller's too), store appends to the appends made.
func TestStatsRatesAddUp(t *testing.T) {
	s := pushdtest.Start(t, server.Config{})
	kinds := []string{pushdtest.WS, pushdtest.WSBatch, pushdtest.SSE}
	subs := make([]*pushdtest.Subscriber, len(kinds))
	for i, kind := range kinds {
		subs[i] = s.Subscribe(t, kind, pushdtest.RoomPath("rates"), pushdtest.SubOptions{})
	}
	s.WaitStats(t, func(st protocol.Stats) error {
		if ss, err := pushdtest.StreamStats(st, "room/rates"); err != nil || ss.Subscribers != 3 {
			return fmt.Errorf("room/rates %+v (%v); want 3 subscribers", ss, err)
		}
		return nil
	})
	// A long poller, connected only while it polls, counts too.
	subs = append(subs, s.Subscribe(t, pushdtest.LongPoll, pushdtest.RoomPath("rates"),
		pushdtest.SubOptions{Since: s.Head(t, pushdtest.RoomPath("rates")).String()}))
	watch := s.Subscribe(t, pushdtest.SSE, pushdtest.StatsPath, pushdtest.SubOptions{})
	first := watch.Next(t).Stats
	const n = 10
	for i := range n {
		s.Publish(t, "rates", "ann", fmt.Sprint("m", i))
	}
	for _, sub := range subs {
		sub.NextN(t, n)
	}
	done := time.Now()
	var in, out, node, nodeOut, appends float64
	prev := first
	for {
		st := watch.Next(t).Stats
		dt := st.Time.Sub(prev.Time).Seconds()
		prev = st
		ss, err := pushdtest.StreamStats(*st, "room/rates")
		if err != nil {
			t.Fatal(err)
		}
		in += ss.EventsIn * dt
		out += ss.DeliveriesOut * dt
		node += st.EventsIn * dt
		nodeOut += st.DeliveriesOut * dt // not counting the stats' own watcher
		appends += st.Nodes[0].Store.Appends * dt
		if st.Time.After(done) {
			break
		}
	}
	if math.Round(in) != n || math.Round(out) != 4*n || math.Round(node) != n || math.Round(nodeOut) != 4*n {
		t.Errorf("events in %.3f, deliveries out %.3f, node's events in %.3f and out %.3f; want %d, %d, %d and %d",
			in, out, node, nodeOut, n, 4*n, n, 4*n)
	}
	if a := math.Round(appends); a < 1 || a > n {
		t.Errorf("store appends add up to %.3f; want 1 to %d", appends, n)
	}
	st := prev
	if p50, p99 := st.Nodes[0].Store.AppendP50, st.Nodes[0].Store.AppendP99; p50 <= 0 || p99 < p50 {
		t.Errorf("append p50 %v ms, p99 %v ms; want both above 0, p99 the larger", p50, p99)
	}
}

// A subscriber that has stopped reading shows with its lag, which grows
// with each event; one that fell more than MaxLag behind and was told to
// reconnect counts as a slow-consumer drop.
func TestStatsLaggingAndSlowDrops(t *testing.T) {
	s := pushdtest.Start(t, server.Config{MaxLag: 16, WriteTimeout: time.Minute, MaxTextBytes: 70 << 10, MaxBodyBytes: 1 << 20})
	stuck := pushdtest.StallSSE(t, s.URL, pushdtest.RoomPath("slow")+"?user=stuck")
	dropped := pushdtest.StallSSE(t, s.URL, pushdtest.RoomPath("drop"))
	s.WaitStats(t, func(st protocol.Stats) error {
		if st.Connections["sse"] != 2 {
			return fmt.Errorf("connections %v; want 2 SSE", st.Connections)
		}
		return nil
	})
	big := strings.Repeat("0123456789abcdef", 4096) // 64 KiB: a hundred fill any socket buffer
	var head uint64
	for i := range 100 {
		head = s.Publish(t, "slow", "ann", fmt.Sprint(i, big)).Seq
		s.Publish(t, "drop", "ann", fmt.Sprint(i, big))
	}
	lagOf := func(st protocol.Stats) (protocol.SubscriberStats, error) {
		for _, l := range st.Lagging {
			if l.Stream == "room/slow" {
				return l, nil
			}
		}
		return protocol.SubscriberStats{}, fmt.Errorf("room/slow not among the lagging %+v", st.Lagging)
	}
	var first protocol.SubscriberStats
	s.WaitStats(t, func(st protocol.Stats) error {
		l, err := lagOf(st)
		if err != nil {
			return err
		}
		slow, err := pushdtest.StreamStats(st, "room/slow")
		if err != nil {
			return err
		}
		if slow.Head != head || slow.MaxLag != l.Lag || l.Lag == 0 {
			return fmt.Errorf("room/slow %+v, lagging %+v; want head %d and its lag as the room's", slow, l, head)
		}
		first = l
		return nil
	})
	if first.Transport != "sse" || first.User != "stuck" || first.Addr != stuck.LocalAddr().String() ||
		first.Since.IsZero() || first.Node == "" {
		t.Errorf("lagging %+v; want the stuck SSE subscriber of user stuck at %s", first, stuck.LocalAddr())
	}
	for i := range 5 {
		s.Publish(t, "slow", "ann", fmt.Sprint("more", i))
	}
	s.WaitStats(t, func(st protocol.Stats) error {
		if l, err := lagOf(st); err != nil || l.Lag != first.Lag+5 {
			return fmt.Errorf("lagging %+v (%v); want lag %d", l, err, first.Lag+5)
		}
		return nil
	})
	var list protocol.SubscriberList
	s.Expect(t, http.MethodGet, "/v1/admin/stats/subscribers?stream=room/slow", "", http.StatusOK, &list)
	if list.Total != 1 || len(list.Subscribers) != 1 || list.Subscribers[0].Lag != first.Lag+5 || list.Head != head+5 {
		t.Errorf("subscribers of room/slow: %+v; want the stuck one with lag %d, head %d", list, first.Lag+5, head+5)
	}

	// The other one reads again: its writer goes on, finds it too far
	// behind and tells it to reconnect.
	if st := s.Stats(t); st.SlowDrops != 0 {
		t.Errorf("%d slow drops before any; want 0", st.SlowDrops)
	}
	_ = dropped.SetReadDeadline(time.Now().Add(pushdtest.Timeout))
	if err := readUntilClose(dropped); err != nil {
		t.Fatal(err)
	}
	s.WaitStats(t, func(st protocol.Stats) error {
		if st.SlowDrops != 1 || st.Nodes[0].SlowDrops != 1 {
			return fmt.Errorf("%d slow drops (node: %d); want 1", st.SlowDrops, st.Nodes[0].SlowDrops)
		}
		return nil
	})
}

// readUntilClose reads an SSE stream until its close event, which must
// say slow_consumer.
func readUntilClose(r io.Reader) error {
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return fmt.Errorf("no close event: %w", err)
		}
		if line == "event: close\n" {
			data, _ := br.ReadString('\n')
			if !strings.Contains(data, protocol.CloseSlowConsumer) {
				return fmt.Errorf("close event %q; want %s", data, protocol.CloseSlowConsumer)
			}
			return nil
		}
	}
}

// Tasks by state, and the live ones.
func TestStatsTasks(t *testing.T) {
	cfg := server.Config{}
	cfg.Tasks.MaxRunning = 1
	s := pushdtest.Start(t, cfg)
	var a, b protocol.Task
	s.Expect(t, http.MethodPost, "/v1/tasks", `{"kind":"demo","name":"first","total":1000,"interval":"1s"}`, http.StatusCreated, &a)
	s.Expect(t, http.MethodPost, "/v1/tasks", `{"kind":"demo","name":"second","total":1000,"interval":"1s"}`, http.StatusCreated, &b)
	s.WaitStats(t, func(st protocol.Stats) error {
		by := st.Tasks.ByState
		if by[protocol.TaskRunning] != 1 || by[protocol.TaskQueued] != 1 || len(st.Tasks.Live) != 2 {
			return fmt.Errorf("tasks %+v; want one running, one queued", st.Tasks)
		}
		if st.Tasks.Live[0].ID != a.ID || st.Tasks.Live[1].ID != b.ID {
			return fmt.Errorf("live tasks %+v; want %s (running) then %s", st.Tasks.Live, a.ID, b.ID)
		}
		return nil
	})
	s.Expect(t, http.MethodPost, "/v1/tasks/"+a.ID+"/cancel", "", http.StatusAccepted, nil)
	s.Expect(t, http.MethodPost, "/v1/tasks/"+b.ID+"/cancel", "", http.StatusAccepted, nil)
	s.WaitStats(t, func(st protocol.Stats) error {
		if st.Tasks.ByState[protocol.TaskCancelled] != 2 || len(st.Tasks.Live) != 0 {
			return fmt.Errorf("tasks %+v; want two cancelled, none live", st.Tasks)
		}
		return nil
	})
}

// The process's figures, and the store's probe: an fsync for bolt.
func TestStatsProcessAndStore(t *testing.T) {
	bs, err := boltstore.Open(t.TempDir(), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bs.Close() })
	s := pushdtest.Start(t, server.Config{Store: bs})
	s.Stats(t) // the sampler starts; the append is in its window
	s.Publish(t, "lobby", "ann", "hi")
	st := s.WaitStats(t, func(st protocol.Stats) error {
		if n := st.Nodes[0].Store; n.Probe != "fsync" || n.ProbeMS <= 0 || n.AppendP50 <= 0 {
			return fmt.Errorf("store %+v; want an fsync probe and an append timed", n)
		}
		return nil
	})
	n := st.Nodes[0]
	host, _ := os.Hostname()
	if n.Node != host || n.Host != host || n.PID != os.Getpid() || n.Started.IsZero() || n.MaxLag != server.DefaultConfig().MaxLag {
		t.Errorf("node %+v; want this process on %s", n, host)
	}
	p := n.Process
	if p.Memory == 0 || p.Heap == 0 || p.Heap > p.Memory || p.Goroutines == 0 || p.Cores < 1 || p.CPU < 0 {
		t.Errorf("process %+v", p)
	}
	if n.Store.ProbeError != "" || n.Store.AppendP99 < n.Store.AppendP50 {
		t.Errorf("store %+v; want no error, p99 at least p50", n.Store)
	}
}

// The stats stream is a stream like any other, on every transport; from
// "0" it starts with the snapshots it keeps.
func TestStatsStreamEveryTransport(t *testing.T) {
	s := pushdtest.Start(t, server.Config{})
	for _, kind := range pushdtest.Transports {
		t.Run(kind, func(t *testing.T) {
			sub := s.Subscribe(t, kind, pushdtest.StatsPath, pushdtest.SubOptions{Since: "0"})
			evs := sub.NextN(t, 2)
			for _, ev := range evs {
				if ev.Type != protocol.TypeStats || ev.Stream != protocol.StatsStream || ev.Stats == nil || len(ev.Stats.Nodes) != 1 {
					t.Fatalf("event %+v; want a stats event with one node", ev)
				}
			}
			if !evs[1].Stats.Time.After(evs[0].Stats.Time) {
				t.Errorf("snapshots at %v then %v", evs[0].Stats.Time, evs[1].Stats.Time)
			}
		})
	}
}

// The subscribers of one stream: every one, furthest behind first, and
// the stream asked for checked.
func TestStatsSubscribers(t *testing.T) {
	s := pushdtest.Start(t, server.Config{})
	for _, kind := range []string{pushdtest.WS, pushdtest.SSE} {
		s.Subscribe(t, kind, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{User: "u" + kind})
	}
	var list protocol.SubscriberList
	s.Expect(t, http.MethodGet, "/v1/admin/stats/subscribers?stream=room/lobby", "", http.StatusOK, &list)
	if list.Total != 2 || len(list.Subscribers) != 2 || list.Stream != "room/lobby" {
		t.Fatalf("%+v; want the two subscribers of room/lobby", list)
	}
	s.Expect(t, http.MethodGet, "/v1/admin/stats/subscribers?stream=room/lobby&limit=1", "", http.StatusOK, &list)
	if list.Total != 2 || len(list.Subscribers) != 1 {
		t.Errorf("with limit=1: %+v; want one of two", list)
	}
	s.Expect(t, http.MethodGet, "/v1/admin/stats/subscribers?stream=room/nobody", "", http.StatusOK, &list)
	if list.Total != 0 || list.Subscribers == nil {
		t.Errorf("a room nobody uses: %+v; want an empty list", list)
	}
	for _, q := range []string{"", "stream=lobby", "stream=room/a%20b", "stream=tasks&limit=0", "stream=tasks&limit=x"} {
		a := s.Get(t, "/v1/admin/stats/subscribers?"+q)
		if a.Status != http.StatusBadRequest {
			t.Errorf("?%s: %d %s; want 400", q, a.Status, a.Body)
		}
	}
}

// /metrics counts publishes, deliveries and refusals by reason; /readyz
// answers 503 once shutdown has begun.
func TestMetricsAndReadiness(t *testing.T) {
	s := pushdtest.Start(t, server.Config{})

	if status, _ := call(t, s, "GET", "/readyz", "", ""); status != 200 {
		t.Fatalf("readyz: %d", status)
	}
	for range 2 {
		if status, _ := call(t, s, "POST", "/v1/rooms/lobby/messages", "", `{"user":"a","text":"hi"}`); status != 201 {
			t.Fatalf("publish: %d", status)
		}
	}
	if status, _ := call(t, s, "GET", "/v1/rooms/lobby/events?since=0&wait=0", "", ""); status != 200 {
		t.Fatalf("poll: %d", status)
	}
	call(t, s, "POST", "/v1/rooms/lobby/messages", "", `{"user":"a","text":""}`)
	call(t, s, "POST", "/v1/tasks", "", `{"kind":"nope"}`)

	text := string(s.Get(t, "/metrics").Body)
	for _, want := range []string{
		"pushd_events_published_total 2",
		`pushd_events_delivered_total{transport="longpoll"} 2`,
		`pushd_requests_rejected_total{reason="empty_text"} 1`,
		`pushd_requests_rejected_total{reason="invalid_param"} 1`,
		`pushd_connections{transport="ws"} 0`,
		"pushd_delivery_latency_seconds_count 1",
		`pushd_tasks{state="running"} 0`,
		"pushd_slow_consumer_drops_total 0",
		"pushd_streams 1", // the room; the failed task start opened no stream
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	if err := s.Srv().Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if status, code := call(t, s, "GET", "/readyz", "", ""); status != 503 || code != "unavailable" {
		t.Fatalf("readyz during shutdown: %d %s; want 503 unavailable", status, code)
	}
}

// brokenStore is a memory store whose appends fail, to the streams named
// (all, for "*"), as a disk that cannot be written does.
type brokenStore struct {
	*server.MemoryStore
	mu     sync.Mutex
	broken map[string]bool
}

func (b *brokenStore) breakStream(stream string, broken bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.broken[stream] = broken
}

func (b *brokenStore) Append(ctx context.Context, stream string, events []protocol.Event) ([]server.Appended, error) {
	b.mu.Lock()
	broken := b.broken[stream] || b.broken["*"]
	b.mu.Unlock()
	if broken {
		return nil, errors.New("write data file: no space left on device")
	}
	return b.MemoryStore.Append(ctx, stream, events)
}

// /readyz answers 503 while an append would fail: the probe's own, or the
// last publish to a stream, until one to that stream succeeds.
func TestReadyzJudgesByAppends(t *testing.T) {
	store := &brokenStore{MemoryStore: server.NewMemoryStore(server.MemoryOptions{MaxEvents: 100}), broken: map[string]bool{}}
	srv := pushdtest.Start(t, server.Config{Store: store})
	t.Cleanup(func() { store.Close() })
	ready := func(want int, says string) {
		t.Helper()
		a := srv.Get(t, "/readyz")
		if a.Status != want || want != http.StatusOK && !strings.Contains(a.Error(t).Message, says) {
			t.Fatalf("readyz: %d %s; want %d saying %q", a.Status, a.Body, want, says)
		}
	}
	ready(http.StatusOK, "")
	store.breakStream("*", true)
	ready(http.StatusServiceUnavailable, "no space left on device")
	store.breakStream("*", false)
	ready(http.StatusOK, "")

	store.breakStream("room/lobby", true)
	if a := srv.Post(t, "/v1/rooms/lobby/messages", `{"user":"ann","text":"hi"}`); a.Status < 500 {
		t.Fatalf("publish to a broken stream: %d", a.Status)
	}
	ready(http.StatusServiceUnavailable, "publishes to room/lobby fail")
	store.breakStream("room/lobby", false)
	ready(http.StatusServiceUnavailable, "publishes to room/lobby fail")
	srv.Publish(t, "lobby", "ann", "hi again")
	ready(http.StatusOK, "")
}
