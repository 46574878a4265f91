package natsstore_test

// Helpers for tests of several pushd servers on one NATS: start them, talk
// to them over HTTP, wait for a condition. Any test of the natsstore_test
// package may use them.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pushd/push/internal/testlog"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
	"github.com/pushd/push/server/natsstore"
)

// waitTimeout bounds every wait for something a server should do. It only
// turns a hang into a failure; nothing asserts on how long things take.
const waitTimeout = 20 * time.Second

// clusterNode is one pushd server of a test cluster, on its own NATS
// connection, listening on 127.0.0.1.
type clusterNode struct {
	Store  *natsstore.Store
	Srv    *server.Server
	URL    string // http://127.0.0.1:port
	client *http.Client
	stop   func()
}

// startCluster starts n pushd servers, each with its own Store on the NATS
// at natsURL (opts with that URL; a short timeout if opts has none). tweak,
// if not nil, adjusts each server's config before it starts: it may set
// Config fields, or add a roster or task peers made from the node's store.
// The servers stop when the test ends, or earlier with Stop; their logs go
// to t.Log.
func startCluster(t *testing.T, natsURL string, n int, opts natsstore.Options, tweak func(t *testing.T, i int, st *natsstore.Store, cfg *server.Config)) []*clusterNode {
	t.Helper()
	nodes := make([]*clusterNode, n)
	for i := range nodes {
		nodes[i] = startClusterNode(t, natsURL, i, opts, tweak)
	}
	return nodes
}

func startClusterNode(t *testing.T, natsURL string, i int, opts natsstore.Options, tweak func(t *testing.T, i int, st *natsstore.Store, cfg *server.Config)) *clusterNode {
	t.Helper()
	opts.URL = natsURL
	if opts.Timeout == 0 {
		opts.Timeout = 2 * time.Second
	}
	logs := testlog.New(t)
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})).With("node", i)
	opts.Logger = log
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	st, err := natsstore.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.Config{Store: st, Logger: log}
	if tweak != nil {
		tweak(t, i, st, &cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	node := &clusterNode{Store: st, Srv: srv, URL: hs.URL, client: &http.Client{Transport: tr}}
	var once sync.Once
	node.stop = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				t.Errorf("node %d: shutdown: %v", i, err)
			}
			tr.CloseIdleConnections()
			hs.Close()
			st.Close()
			logs.Stop()
		})
	}
	t.Cleanup(node.stop)
	return node
}

// Stop shuts the server down (its HTTP listener and its NATS connection
// too), as if it had gone away.
func (n *clusterNode) Stop() { n.stop() }

// do makes a request (body "" sends none; otherwise JSON) and returns the
// status and body.
func (n *clusterNode) do(t testing.TB, method, path, body string) (int, []byte) {
	t.Helper()
	status, _, b := n.doHeader(t, method, path, body)
	return status, b
}

// doHeader is do that returns the answer's header too.
func (n *clusterNode) doHeader(t testing.TB, method, path, body string) (int, http.Header, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout+30*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, n.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := n.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// publish posts a message to a room and returns the stored event.
func (n *clusterNode) publish(t testing.TB, room, user, text string) protocol.Event {
	t.Helper()
	body, _ := json.Marshal(protocol.PublishRequest{User: user, Text: text})
	status, b := n.do(t, http.MethodPost, "/v1/rooms/"+room+"/messages", string(body))
	if status != http.StatusCreated {
		t.Fatalf("publish to %s: %d %s", room, status, b)
	}
	var ev protocol.Event
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("publish answer %s: %v", b, err)
	}
	return ev
}

// poll makes a long or short poll on a room (query without "?") and
// returns its events and cursor.
func (n *clusterNode) poll(t testing.TB, room, query string) ([]protocol.Event, string) {
	t.Helper()
	status, b := n.do(t, http.MethodGet, "/v1/rooms/"+room+"/events?"+query, "")
	if status != http.StatusOK {
		t.Fatalf("poll %s?%s: %d %s", room, query, status, b)
	}
	var p protocol.Poll
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("poll answer %s: %v", b, err)
	}
	return p.Events, p.Cursor
}

// roomEvents returns every event a room holds, as this server has it:
// polls from since=0 until one answers with no events after waiting wait
// (0: a short poll).
func (n *clusterNode) roomEvents(t testing.TB, room string, wait time.Duration) []protocol.Event {
	t.Helper()
	var all []protocol.Event
	since := "0"
	for {
		q := url.Values{"since": {since}, "wait": {wait.String()}}
		evs, cur := n.poll(t, room, q.Encode())
		if len(evs) == 0 {
			return all
		}
		all = append(all, evs...)
		since = cur
	}
}

// presence returns the answer of GET presence: its status, and the users
// if it is 200.
func (n *clusterNode) presence(t testing.TB, room string) (int, []string) {
	t.Helper()
	status, b := n.do(t, http.MethodGet, "/v1/rooms/"+room+"/presence", "")
	if status != http.StatusOK {
		return status, nil
	}
	var p protocol.Presence
	if err := json.Unmarshal(b, &p); err != nil || p.Users == nil {
		t.Fatalf("presence answer %s: %v", b, err)
	}
	return status, p.Users
}

// connect opens a WebSocket to a room's events, present as user if user is
// not "", and returns a function that drops it (also called when the test
// ends). The user has joined the room's presence when connect returns.
func (n *clusterNode) connect(t testing.TB, room, user string) (drop func()) {
	t.Helper()
	drop, err := n.dial(room, user)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drop)
	return drop
}

// dial is connect for any goroutine: it returns an error instead of
// failing the test, and leaves the drop to the caller.
func (n *clusterNode) dial(room, user string) (drop func(), err error) {
	q := url.Values{}
	if user != "" {
		q.Set("user", user)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ws := "ws" + strings.TrimPrefix(n.URL, "http") + "/v1/rooms/" + room + "/events?" + q.Encode()
	c, resp, err := websocket.Dial(ctx, ws, &websocket.DialOptions{HTTPClient: n.client})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		return nil, fmt.Errorf("connect to %s as %q: %w (status %d)", room, user, err, status)
	}
	// Read (and drop) what the server sends, so it never has to wait on
	// this client, until the connection ends.
	readCtx, stopRead := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, _, err := c.Read(readCtx); err != nil {
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			_ = c.CloseNow()
			stopRead()
			<-done
		})
	}, nil
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
