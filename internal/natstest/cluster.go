package natstest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/pushd/push/internal/testwait"
)

// Cluster is a NATS cluster of JetStream servers inside the test process,
// on 127.0.0.1. Every connection to a server, from clients and from the
// other servers, goes through a gate of the test's, so Isolate can cut a
// server off the network as a crashed or unplugged machine is: at once,
// without the shutdown that hands its leaderships over first.
type Cluster struct {
	t     testing.TB
	nodes []*natsserver.Server
	// clients[i] is the gate of server i's client port; routes[i][j] the
	// gate server i reaches server j's cluster port through.
	clients []*gate
	routes  [][]*gate
}

// StartCluster starts n clustered servers until the test ends and waits
// until JetStream has a leader.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{t: t, nodes: make([]*natsserver.Server, n), clients: make([]*gate, n), routes: make([][]*gate, n)}
	clusterPorts := make([]int, n)
	for j := range n {
		clusterPorts[j] = freePort(t)
	}
	for i := range n {
		c.routes[i] = make([]*gate, n)
		for j := range n {
			if i != j {
				c.routes[i][j] = newGate(t, fmt.Sprintf("127.0.0.1:%d", clusterPorts[j]))
			}
		}
	}
	for i := range n {
		var routes []*url.URL
		for j := range n {
			if i != j {
				routes = append(routes, &url.URL{Scheme: "nats", Host: c.routes[i][j].addr})
			}
		}
		opts := &natsserver.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       natsserver.RANDOM_PORT,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoLog:      true,
			NoSigs:     true,
			Cluster: natsserver.ClusterOpts{
				Name: "test", Host: "127.0.0.1", Port: clusterPorts[i],
				// Servers and clients learn of each other only through
				// the gates: what a server advertises leads nowhere.
				Advertise: "127.0.0.1:1", NoAdvertise: true,
			},
			Routes: routes,
		}
		ns, err := natsserver.NewServer(opts)
		if err != nil {
			t.Fatalf("nats server %d: %v", i+1, err)
		}
		ns.Start()
		if !ns.ReadyForConnections(10 * time.Second) {
			ns.Shutdown()
			t.Fatalf("nats server %d: not ready within 10s", i+1)
		}
		c.nodes[i] = ns
		t.Cleanup(func() {
			ns.Shutdown()
			ns.WaitForShutdown()
		})
		c.clients[i] = newGate(t, ns.Addr().String())
	}
	testwait.Until(t, 30*time.Second, 20*time.Millisecond, func() error {
		if !c.hasLeader() {
			return errors.New("nats cluster: no JetStream leader yet")
		}
		return nil
	})
	return c
}

// hasLeader reports whether a reachable server leads JetStream.
func (c *Cluster) hasLeader() bool {
	for i, ns := range c.nodes {
		if !c.clients[i].isCut() && ns.JetStreamIsLeader() {
			return true
		}
	}
	return false
}

// URL is the comma-separated client URLs of every server, through their
// gates.
func (c *Cluster) URL() string {
	urls := make([]string, len(c.clients))
	for i, g := range c.clients {
		urls[i] = "nats://" + g.addr
	}
	return strings.Join(urls, ",")
}

// StreamLeader returns the index of the server that leads the JetStream
// stream name (of the default account), or -1.
func (c *Cluster) StreamLeader(name string) int {
	for i, ns := range c.nodes {
		if ns.JetStreamIsStreamLeader(natsserver.DEFAULT_GLOBAL_ACCOUNT, name) {
			return i
		}
	}
	return -1
}

// Isolate cuts server i off: every connection to or from it ends, and new
// ones are refused, until Rejoin.
func (c *Cluster) Isolate(i int) {
	c.setCut(i, true)
}

// Rejoin puts server i back on the network.
func (c *Cluster) Rejoin(i int) {
	c.setCut(i, false)
}

func (c *Cluster) setCut(i int, cut bool) {
	gates := []*gate{c.clients[i]}
	for j := range c.nodes {
		if j != i {
			gates = append(gates, c.routes[i][j], c.routes[j][i])
		}
	}
	for _, g := range gates {
		g.setCut(cut)
	}
}

// freePort returns a port of 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// gate forwards the connections made to it to one address, and can cut
// them all and refuse new ones.
type gate struct {
	addr   string
	target string
	ln     net.Listener

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// newGate forwards a new port of 127.0.0.1 to target until the test ends.
func newGate(t testing.TB, target string) *gate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{addr: ln.Addr().String(), target: target, ln: ln, conns: make(map[net.Conn]struct{})}
	g.wg.Go(g.accept)
	t.Cleanup(func() {
		ln.Close()
		g.setCut(true)
		g.wg.Wait()
	})
	return g
}

func (g *gate) accept() {
	for {
		in, err := g.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", g.target)
		if err != nil {
			in.Close()
			continue
		}
		g.mu.Lock()
		if g.cut {
			g.mu.Unlock()
			in.Close()
			out.Close()
			continue
		}
		g.conns[in], g.conns[out] = struct{}{}, struct{}{}
		g.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			_, _ = io.Copy(dst, src)
			dst.Close()
			src.Close()
			g.mu.Lock()
			delete(g.conns, dst)
			delete(g.conns, src)
			g.mu.Unlock()
		}
		g.wg.Go(func() { pipe(out, in) })
		g.wg.Go(func() { pipe(in, out) })
	}
}

func (g *gate) isCut() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cut
}

// setCut cuts every connection through the gate and refuses new ones, or
// lets them through again.
func (g *gate) setCut(cut bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.cut = cut
	if cut {
		for conn := range g.conns {
			conn.Close()
		}
	}
}
