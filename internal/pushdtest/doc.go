// Package pushdtest runs a real pushd for tests, and talks to it as
// clients do: over HTTP, WebSocket, Server-Sent Events and polls.
//
// Start a server in the test's process with Start; it listens on
// 127.0.0.1 on a port of its own and stops when the test ends. Restart
// swaps in a new instance on the same address (as a restarted pushd), Down
// and Up take it off the network and put it back (as a killed one brought
// back with its data), and DropConns cuts every open connection. For the
// tests that kill pushd or signal it, StartProcess runs pushd serve as a
// process of its own (ProgramCommand runs the test binary as the program,
// with AsProgram in its TestMain).
//
// Both are a Remote: the requests (Request, Get, Post, Expect), the room
// and task helpers (Publish, Poll, History, Presence, StartTask, Report,
// ...), and the subscriptions. Subscribe reads a stream over one transport
// and checks every event against the protocol, and every frame of an
// event stream against how pushd writes them; Watch does the same in the
// background and keeps what it saw.
//
// Every wait is bounded by Timeout: it turns a hang into a failure and
// asserts nothing about speed.
package pushdtest

import "time"

// Timeout bounds every wait of the package for something the server
// should do or send.
const Timeout = 20 * time.Second
