// Package natstest runs a NATS server with JetStream inside the test
// process, so tests of the NATS store need nothing installed.
package natstest

import (
	"net"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// Server is an embedded NATS server on 127.0.0.1 with JetStream on, its
// data in a test's temporary directory. It can be stopped and started
// again on the same port and data, as a NATS outage.
type Server struct {
	t    testing.TB
	opts natsserver.Options
	ns   *natsserver.Server
}

// Start runs a server until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, true)
}

// StartWithoutJetStream runs a plain NATS server, as a misconfigured one.
func StartWithoutJetStream(t testing.TB) *Server {
	t.Helper()
	return start(t, false)
}

func start(t testing.TB, jetStream bool) *Server {
	t.Helper()
	s := &Server{t: t, opts: natsserver.Options{
		Host:      "127.0.0.1",
		Port:      natsserver.RANDOM_PORT,
		JetStream: jetStream,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
		// The HTTP monitor and cluster ports stay off.
	}}
	s.start()
	// Later starts reuse the port, so clients reconnect to the same URL.
	s.opts.Port = s.ns.Addr().(*net.TCPAddr).Port
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	opts := s.opts
	ns, err := natsserver.NewServer(&opts)
	if err != nil {
		s.t.Fatalf("nats server: %v", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		s.t.Fatal("nats server: not ready within 10s")
	}
	s.ns = ns
}

// URL is the address clients connect to.
func (s *Server) URL() string { return s.ns.ClientURL() }

// Stop shuts the server down; Restart brings it back with its data.
func (s *Server) Stop() {
	if s.ns == nil {
		return
	}
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
	s.ns = nil
}

// Restart starts a stopped server again on the same port and data.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}
