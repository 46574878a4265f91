package server

import (
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/pushd/push/protocol"
)

// exposedHeaders are the headers of pushd's answers that a page of another
// origin may read (Access-Control-Expose-Headers): CORS lets scripts see
// only a few simple ones by default.
const exposedHeaders = "Retry-After, Location, Allow"

// checkOrigin enforces the allowed origins on requests from browsers (those
// with an Origin header): same-origin requests and the configured patterns
// pass and get CORS headers; others are refused, so no other site's page can
// act with a user's credentials. A refusal carries the CORS headers too, so
// the page can read why, and is logged at debug level with what the
// server took for its own origin. It reports whether the request was
// answered already (a preflight, or a refusal).
func (s *Server) checkOrigin(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Expose-Headers", exposedHeaders)
	scheme, host := s.publicOrigin(r)
	if !s.originAllowed(origin, scheme, host) {
		own := host
		if scheme != "" {
			own = scheme + "://" + host
		}
		s.log.Debug("refused a page of another origin", "origin", origin, "own", own,
			"client", s.clientIP(r), "method", r.Method, "path", r.URL.Path,
			"hint", "allow it with --allow-origin; behind a proxy, have it send X-Forwarded-Host and X-Forwarded-Proto and list it in --trusted-proxies")
		s.writeError(w, r, protocol.Errorf(http.StatusForbidden, protocol.CodeForbidden,
			"pages from %s may not use this server (it was reached as %s); its operator can allow them with --allow-origin, or, behind a proxy, forward the host and scheme the page used (see Deploying in pushd's README)", origin, own))
		return true
	}
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", "GET, POST")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Idempotency-Key, Last-Event-ID")
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	return false
}

// originAllowed: the server's own origin (host, and scheme when known, as
// the client reached it, see publicOrigin; a default port may be left out
// on either side), or a pattern of --allow-origin matched against the
// origin's host, or against scheme://host when the pattern has a scheme.
func (s *Server) originAllowed(origin, scheme, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if scheme == "" || strings.EqualFold(u.Scheme, scheme) {
		if strings.EqualFold(withPort(u.Host, u.Scheme), withPort(host, u.Scheme)) {
			return true
		}
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

// withPort adds scheme's default port to a host that has none.
func withPort(host, scheme string) string {
	if u := (&url.URL{Host: host}); u.Port() != "" {
		return host
	}
	switch strings.ToLower(scheme) {
	case "https", "wss":
		return host + ":443"
	case "http", "ws":
		return host + ":80"
	}
	return host
}
