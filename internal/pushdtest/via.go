package pushdtest

import (
	"strings"
	"testing"
)

// Via returns the server as reached through a proxy at url: the view's
// requests, subscriptions and polls go to url (its WS too), and from there
// to this server. Entered does not count through it.
func (s *Server) Via(t testing.TB, url string) *Remote {
	t.Helper()
	return newRemote(strings.TrimRight(url, "/"), s.Client)
}
