package natsstore_test

// Helpers for tests of several pushd servers on one NATS: start them, talk
// to them over HTTP, wait for a condition. Any test of the natsstore_test
// package may use them.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushd/push/client"
	"github.com/pushd/push/internal/natstest"
	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testlog"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
	"github.com/pushd/push/server/natsstore"
)

// waitTimeout bounds every wait for something a server should do. It only
// turns a hang into a failure; nothing asserts on how long things take.
const waitTimeout = 20 * time.Second

// clusterNode is one pushd server of a test cluster, on its own NATS
// connection: a pushdtest server with a NATS store, the roster and tasks
// a tweak gave it if any, and a client of its own as "tester".
type clusterNode struct {
	*pushdtest.Server
	Store     *natsstore.Store
	Roster    *natsstore.Roster
	TaskStore *natsstore.Tasks
	Client    *client.Client
}

// tweak adjusts the config of server i of a test cluster before it
// starts: it may set Config fields, or add a roster or task peers made
// from the server's store.
type tweak func(t *testing.T, i int, st *natsstore.Store, cfg *server.Config)

// startCluster starts n pushd servers, each with its own Store on the NATS
// at natsURL (opts with that URL; a short timeout if opts has none),
// adjusted by tweaks in order. The servers stop when the test ends, or
// earlier with stop; their logs go to t.Log.
func startCluster(t *testing.T, natsURL string, n int, opts natsstore.Options, tweaks ...tweak) []*clusterNode {
	t.Helper()
	nodes := make([]*clusterNode, n)
	for i := range nodes {
		nodes[i] = startClusterNode(t, natsURL, i, opts, tweaks...)
	}
	return nodes
}

// startClusterNode starts server i of a cluster, as startCluster does.
func startClusterNode(t *testing.T, natsURL string, i int, opts natsstore.Options, tweaks ...tweak) *clusterNode {
	t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = 2 * time.Second
	}
	opts.Logger = testlog.Logger(t, slog.LevelInfo).With("node", i)
	st := open(t, natsURL, opts) // closed after the server's shutdown
	cfg := server.Config{Store: st, Logger: opts.Logger}
	for _, tw := range tweaks {
		tw(t, i, st, &cfg)
	}
	n := &clusterNode{Server: pushdtest.Start(t, cfg), Store: st}
	n.Roster, _ = cfg.Roster.(*natsstore.Roster)
	n.TaskStore, _ = cfg.TaskStore.(*natsstore.Tasks)
	cl, err := client.New(n.URL, client.WithUser("tester"))
	if err != nil {
		t.Fatal(err)
	}
	n.Client = cl
	return n
}

// withConfig starts servers with cfg's fields; their Store and Logger
// stay the cluster's.
func withConfig(cfg server.Config) tweak {
	return func(_ *testing.T, _ int, _ *natsstore.Store, c *server.Config) {
		cfg.Store, cfg.Logger = c.Store, c.Logger
		*c = cfg
	}
}

// withRoster gives server i a roster named node<i> with the tests' refresh
// and TTL.
func withRoster(t *testing.T, i int, st *natsstore.Store, cfg *server.Config) {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	r, err := st.Roster(ctx, natsstore.RosterOptions{Node: fmt.Sprintf("node%d", i), Refresh: testRefresh, TTL: testTTL})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Roster = r
}

// withTasks gives each server of a test cluster a natsstore.Tasks on its
// store as its task store and task peers, and progress events at most
// 1 ms apart.
func withTasks(nodeTTL time.Duration) tweak {
	return func(t *testing.T, i int, st *natsstore.Store, cfg *server.Config) {
		shared := openTasks(t, st, natsstore.TaskOptions{NodeTTL: nodeTTL, Logger: cfg.Logger})
		cfg.TaskStore, cfg.TaskPeers = shared, shared
		cfg.Tasks.MinInterval = time.Millisecond
	}
}

// startNode starts one server with cfg on the NATS at url, with a
// heartbeat of a second if cfg has none.
func startNode(t *testing.T, url string, cfg server.Config) *clusterNode {
	t.Helper()
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = time.Second
	}
	return startClusterNode(t, url, 0, natsstore.Options{}, withConfig(cfg))
}

// startPair starts two servers on a new embedded NATS, as startNode does.
func startPair(t *testing.T) (ns *natstest.Server, a, b *clusterNode) {
	t.Helper()
	ns = natstest.Start(t)
	return ns, startNode(t, ns.URL(), server.Config{}), startNode(t, ns.URL(), server.Config{})
}

// publishN publishes count messages to room, prefix0 to
// prefix<count-1>, and returns their texts and the last as stored.
func (n *clusterNode) publishN(t *testing.T, room, prefix string, count int) ([]string, protocol.Event) {
	t.Helper()
	var texts []string
	var last protocol.Event
	for i := range count {
		texts = append(texts, fmt.Sprintf("%s%d", prefix, i))
		last = n.Publish(t, room, "tester", texts[i])
	}
	return texts, last
}

// waitReady waits until the node's /readyz answers want.
func (n *clusterNode) waitReady(t *testing.T, want int) {
	t.Helper()
	testwait.Until(t, pushdtest.Timeout, 50*time.Millisecond, func() error {
		if a := n.Get(t, "/readyz"); a.Status != want {
			return fmt.Errorf("GET /readyz: %d %s, want %d", a.Status, a.Body, want)
		}
		return nil
	})
}

// stop shuts the server down, its HTTP listener and its NATS connection
// too, as if it had gone away.
func (n *clusterNode) stop(t *testing.T) {
	t.Helper()
	n.Stop(t)
	_ = n.Store.Close()
}

// presence returns the answer of GET presence: its status, and the users
// if it is 200.
func (n *clusterNode) presence(t testing.TB, room string) (int, []string) {
	t.Helper()
	a := n.Get(t, "/v1/rooms/"+room+"/presence")
	if a.Status != http.StatusOK {
		return a.Status, nil
	}
	var p protocol.Presence
	if a.JSON(t, &p); p.Users == nil {
		t.Fatalf("presence answer %s: no users list", a.Body)
	}
	return a.Status, p.Users
}

// connect opens a WebSocket to a room's events as user, read in the
// background, and returns a function that drops it (also called when the
// test ends). The user has joined the room's presence when connect
// returns. It may be called from any goroutine of the test.
func (n *clusterNode) connect(t testing.TB, room, user string) (drop func()) {
	t.Helper()
	return n.Watch(pushdtest.GoTB{TB: t}, pushdtest.WS, pushdtest.RoomPath(room), pushdtest.SubOptions{User: user}).Stop
}

// natsProxy stands between NATS clients and a NATS server, passing the
// protocol through, and can lose one write on the way as a network that
// fails at the wrong moment does: its request (it never reaches NATS), or
// its answer (it lands, and the client never hears so, and times out).
type natsProxy struct {
	t      testing.TB
	ln     net.Listener
	target string

	mu      sync.Mutex
	rules   []*loseRule
	answers map[string]*loseRule // reply subject -> the rule whose answer goes
	conns   []net.Conn
	wg      sync.WaitGroup
}

// loseRule is one write to lose: the first client publish to subject
// whose headers or payload hold text.
type loseRule struct {
	subject, text string
	answer        bool          // lose its answer, not the request
	lost          chan struct{} // closed once it has been lost
}

// startNATSProxy listens on 127.0.0.1 for clients of the NATS at natsURL,
// until the test ends.
func startNATSProxy(t testing.TB, natsURL string) *natsProxy {
	t.Helper()
	u, err := url.Parse(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &natsProxy{t: t, ln: ln, target: u.Host, answers: make(map[string]*loseRule)}
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

// URL is where clients connect.
func (p *natsProxy) URL() string { return "nats://" + p.ln.Addr().String() }

// loseRequest loses the next publish to subject that holds text; the
// channel closes once it has.
func (p *natsProxy) loseRequest(subject, text string) <-chan struct{} {
	return p.add(&loseRule{subject: subject, text: text})
}

// loseAnswer passes the next publish to subject that holds text and loses
// NATS's answer to it; the channel closes once it has.
func (p *natsProxy) loseAnswer(subject, text string) <-chan struct{} {
	return p.add(&loseRule{subject: subject, text: text, answer: true})
}

func (p *natsProxy) add(r *loseRule) <-chan struct{} {
	r.lost = make(chan struct{})
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append(p.rules, r)
	return r.lost
}

func (p *natsProxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *natsProxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		p.wg.Go(func() { p.pipe(client, server, p.fromClient) })
		p.wg.Go(func() { p.pipe(server, client, p.fromServer) })
	}
}

// pipe copies the protocol from src to dst, one operation at a time:
// a control line, and for messages their payload. keep decides on each
// message (its control line's fields and payload) whether it goes on.
func (p *natsProxy) pipe(src, dst net.Conn, keep func(fields []string, payload []byte) bool) {
	defer src.Close()
	defer dst.Close()
	br := bufio.NewReaderSize(src, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return
		}
		fields := strings.Fields(string(line))
		frame := line
		if len(fields) > 0 {
			switch op := strings.ToUpper(fields[0]); op {
			case "PUB", "HPUB", "MSG", "HMSG":
				size, err := strconv.Atoi(fields[len(fields)-1])
				if err != nil {
					p.t.Errorf("nats proxy: %q", line)
					return
				}
				payload := make([]byte, size+2) // and its \r\n
				if _, err := io.ReadFull(br, payload); err != nil {
					return
				}
				if !keep(fields, payload) {
					continue
				}
				frame = append(line, payload...)
			}
		}
		if _, err := dst.Write(frame); err != nil {
			return
		}
	}
}

// fromClient loses a publish that a request rule matches, and notes the
// reply subject of one that an answer rule matches.
func (p *natsProxy) fromClient(fields []string, payload []byte) bool {
	op := strings.ToUpper(fields[0])
	if op != "PUB" && op != "HPUB" {
		return true
	}
	subject, reply := fields[1], ""
	if n := len(fields); op == "PUB" && n == 4 || op == "HPUB" && n == 5 {
		reply = fields[2]
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, r := range p.rules {
		if r.subject != subject || !bytes.Contains(payload, []byte(r.text)) {
			continue
		}
		p.rules = slices.Delete(p.rules, i, i+1)
		if !r.answer {
			close(r.lost)
			return false
		}
		if reply == "" {
			p.t.Errorf("nats proxy: a publish to %s that wants no answer", subject)
			return true
		}
		p.answers[reply] = r
		return true
	}
	return true
}

// fromServer loses the answers that answer rules have picked.
func (p *natsProxy) fromServer(fields []string, _ []byte) bool {
	op := strings.ToUpper(fields[0])
	if op != "MSG" && op != "HMSG" {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.answers[fields[1]]
	if !ok {
		return true
	}
	delete(p.answers, fields[1])
	close(r.lost)
	return false
}
