// Package pushdtest runs a real pushd in-process for tests, and talks to
// it as clients do: over HTTP, WebSocket, Server-Sent Events and polls.
//
// Start a server with Start; it listens on 127.0.0.1 on a port of its
// own and stops when the test ends. Restart swaps in a new instance on
// the same address (as a restarted pushd), Down and Up take it off the
// network and put it back (as a killed one brought back with its data),
// and DropConns cuts every open connection. Subscribe reads a stream over
// one transport and checks every event against the protocol; Watch does
// the same in the background and keeps what it saw.
//
// Every wait is bounded by Timeout: it turns a hang into a failure and
// asserts nothing about speed.
package pushdtest

import "time"

// Timeout bounds every wait of the package for something the server
// should do or send.
const Timeout = 20 * time.Second
