package pushdtest

import (
	"net/http"
	"strings"
)

// Remote is a pushd as its clients reach it, by URL: the requests, polls,
// subscriptions and watchers of this package, for a Server in the test's
// process or a Process of its own.
type Remote struct {
	// URL is the server's base URL, such as http://127.0.0.1:port.
	URL string
	// WS is the same as a WebSocket URL, ws://127.0.0.1:port.
	WS string
	// Client is the HTTP client of the requests.
	Client *http.Client

	// entered counts the requests of a named subscriber that reached the
	// server (Server.Entered); nil where that cannot be seen.
	entered func(name string) int
}

func newRemote(url string, client *http.Client) *Remote {
	return &Remote{URL: url, WS: "ws" + strings.TrimPrefix(url, "http"), Client: client}
}
