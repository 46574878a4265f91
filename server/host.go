package server

import (
	"net"
	"net/http"
	"net/netip"
	"path"
	"strings"

	"github.com/pushd/push/protocol"
)

// A server answers only to the host names it is meant to: a page whose
// name is made to resolve to the server's address (DNS rebinding) is of
// the same origin as that name, so the origin check lets it through; the
// host check does not. It looks at the Host header, or from a trusted
// proxy at the host the proxy forwards (see publicOrigin), and takes:
//
//   - "localhost", and any IP address ("127.0.0.1", "[::1]"), with any
//     port: a browser sends a name, never an address, for a page of a
//     name, so an address cannot be a rebinding;
//   - the names of Config.AllowedHosts.
//
// Anything else is refused with 421 and a message that names the flag.

// hostAllowed reports whether the server answers to host, a Host header
// ("chat.example.com:8080", "[::1]:8080", "localhost").
func (s *Server) hostAllowed(host string) bool {
	name := hostName(host)
	if name == "" || name == "localhost" {
		return true
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return true
	}
	for _, p := range s.cfg.AllowedHosts {
		target := name
		if strings.Contains(p, ":") {
			target = strings.ToLower(strings.TrimSuffix(host, "."))
		}
		if ok, _ := path.Match(strings.ToLower(p), target); ok {
			return true
		}
	}
	return false
}

// hostName is host without its port, brackets and final dot, in lower
// case: "[::1]:8080" is "::1", "Chat.Example.com.:443" "chat.example.com".
func hostName(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return strings.ToLower(strings.TrimSuffix(host, "."))
}

// checkHost refuses a request for a host the server does not answer to
// (see hostAllowed), and reports whether it did.
func (s *Server) checkHost(w http.ResponseWriter, r *http.Request) bool {
	_, host := s.publicOrigin(r)
	if s.hostAllowed(host) {
		return false
	}
	s.log.Debug("refused a request for a host this server does not answer to", "host", host,
		"client", s.clientIP(r), "method", r.Method, "path", r.URL.Path, "hint", "add it with --allowed-hosts")
	s.writeError(w, r, protocol.Errorf(http.StatusMisdirectedRequest, protocol.CodeMisdirected,
		"this server does not answer to the host %q: it answers to localhost, IP addresses and the names its operator gives with --allowed-hosts", clipHost(host)))
	return true
}

// clipHost bounds a host name quoted in an answer.
func clipHost(h string) string {
	if len(h) > 100 {
		return h[:100] + "..."
	}
	return h
}
