package server

import (
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/pushd/push/protocol"
)

// checkOrigin enforces the allowed origins on requests from browsers (those
// with an Origin header): same-origin requests and the configured patterns
// pass and get CORS headers; others are refused, so no other site's page can
// act with a user's credentials. It reports whether the request was answered
// already (a preflight, or a refusal).
func (s *Server) checkOrigin(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	if !s.originAllowed(origin, r.Host) {
		s.writeError(w, r, protocol.Errorf(http.StatusForbidden, protocol.CodeForbidden,
			"pages from %s may not use this server; its operator can allow them with --allow-origin", origin))
		return true
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Expose-Headers", "Retry-After")
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", "GET, POST")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Idempotency-Key, Last-Event-ID")
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	return false
}

// originAllowed: the request's own host, or a pattern of --allow-origin
// matched against the origin's host, or against scheme://host when the
// pattern has a scheme.
func (s *Server) originAllowed(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, host) {
		return true
	}
	for _, p := range s.cfg.AllowOrigins {
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(target)); ok {
			return true
		}
	}
	return false
}
