package pushdtest

import (
	"strings"
	"testing"
)

// Via returns the server as reached through a proxy at url: the view's
// requests, subscriptions and polls go to url (its WS too), and from there
// to this server. The view does not follow Restart, and Entered counts
// only on the server itself.
func (s *Server) Via(t testing.TB, url string) *Server {
	t.Helper()
	v := &Server{URL: strings.TrimRight(url, "/"), Client: s.Client, t: t, cfg: s.cfg, entered: make(map[string]int), hs: s.hs, ln: s.ln}
	v.WS = "ws" + strings.TrimPrefix(v.URL, "http")
	v.cur.Store(s.cur.Load())
	return v
}
