package server

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// A request from an address in Config.TrustedProxies came through a proxy
// that says who its client was: the client's address comes from the
// Forwarded header (RFC 7239) or else X-Forwarded-For, and the address the
// page used (for the origin check) from Forwarded's host and proto or else
// X-Forwarded-Host and X-Forwarded-Proto. From any other address those
// headers are ignored, as anyone can send them.

// ParseTrustedProxies parses CIDRs ("10.0.0.0/8") and single addresses
// ("127.0.0.1", "::1") for Config.TrustedProxies.
func ParseTrustedProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, &net.ParseError{Type: "CIDR or IP address", Text: s}
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// trusted reports whether addr (an IP address, as text) is one of the
// trusted proxies.
func (s *Server) trusted(addr string) bool {
	if len(s.cfg.TrustedProxies) == 0 {
		return false
	}
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peerIP is the address of the other end of the request's connection.
func peerIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// clientIP is the address the request came from: the connection's, or,
// when that is a trusted proxy, the first address in the forwarding chain,
// read from the right, that is not a trusted proxy. The per-address limits
// count by it, and logs name it.
func (s *Server) clientIP(r *http.Request) string {
	ip := peerIP(r)
	if !s.trusted(ip) {
		return ip
	}
	chain := forwardedFor(r.Header)
	for i := len(chain) - 1; i >= 0; i-- {
		hop := chain[i]
		if _, err := netip.ParseAddr(hop); err != nil {
			// "unknown", an obfuscated name: the chain cannot be followed
			// further back than the proxy that wrote it.
			return ip
		}
		ip = hop
		if !s.trusted(hop) {
			return hop
		}
	}
	return ip
}

// forwardedFor returns the client addresses a proxy chain recorded, the
// nearest last: Forwarded's for= parameters when there is a Forwarded
// header, else X-Forwarded-For's list.
func forwardedFor(h http.Header) []string {
	var chain []string
	if fwd := h.Values("Forwarded"); len(fwd) > 0 {
		for _, el := range forwardedElements(fwd) {
			chain = append(chain, forwardedNode(el["for"]))
		}
		return chain
	}
	for _, v := range h.Values("X-Forwarded-For") {
		for hop := range strings.SplitSeq(v, ",") {
			if hop = strings.TrimSpace(hop); hop != "" {
				chain = append(chain, forwardedNode(hop))
			}
		}
	}
	return chain
}

// forwardedNode turns a node of Forwarded or X-Forwarded-For
// ("192.0.2.1", "192.0.2.1:4711", "[2001:db8::1]:4711", "2001:db8::1")
// into the bare address.
func forwardedNode(n string) string {
	if host, _, err := net.SplitHostPort(n); err == nil {
		return host
	}
	return strings.TrimSuffix(strings.TrimPrefix(n, "["), "]")
}

// forwardedElements parses Forwarded header values (RFC 7239, section 4):
// comma-separated elements of semicolon-separated name=value pairs, values
// maybe quoted. Names are lower-cased.
func forwardedElements(values []string) []map[string]string {
	var out []map[string]string
	for _, v := range values {
		for el := range splitQuoted(v, ',') {
			pairs := map[string]string{}
			for pair := range splitQuoted(el, ';') {
				name, value, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if !ok {
					continue
				}
				value = strings.TrimSpace(value)
				if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
					value = strings.ReplaceAll(value[1:len(value)-1], `\"`, `"`)
				}
				pairs[strings.ToLower(strings.TrimSpace(name))] = value
			}
			out = append(out, pairs)
		}
	}
	return out
}

// splitQuoted yields the parts of s between seps that are not inside
// double quotes.
func splitQuoted(s string, sep byte) func(func(string) bool) {
	return func(yield func(string) bool) {
		start, quoted := 0, false
		for i := 0; i < len(s); i++ {
			switch {
			case s[i] == '\\' && quoted:
				i++
			case s[i] == '"':
				quoted = !quoted
			case s[i] == sep && !quoted:
				if !yield(s[start:i]) {
					return
				}
				start = i + 1
			}
		}
		yield(s[start:])
	}
}

// publicOrigin returns the scheme and host a client used to reach the
// server: the request's own Host, and https when it came over TLS, or,
// from a trusted proxy, what the proxy says: Forwarded's proto= and host=
// of the element nearest the client, else the first X-Forwarded-Proto and
// X-Forwarded-Host. The scheme is "" when nothing says it (plain HTTP, a
// proxy that does not forward it); a proxy that forwards no host leaves
// the request's Host.
func (s *Server) publicOrigin(r *http.Request) (scheme, host string) {
	host = r.Host
	if r.TLS != nil {
		scheme = "https"
	}
	if !s.trusted(peerIP(r)) {
		return scheme, host
	}
	if fwd := r.Header.Values("Forwarded"); len(fwd) > 0 {
		if els := forwardedElements(fwd); len(els) > 0 {
			if p := els[0]["proto"]; p != "" {
				scheme = strings.ToLower(p)
			}
			if h := els[0]["host"]; h != "" {
				host = h
			}
		}
		return scheme, host
	}
	if p := firstListValue(r.Header.Get("X-Forwarded-Proto")); p != "" {
		scheme = strings.ToLower(p)
	}
	if h := firstListValue(r.Header.Get("X-Forwarded-Host")); h != "" {
		host = h
	}
	return scheme, host
}

// firstListValue is the first item of a comma-separated header value: the
// one the proxy nearest the client wrote.
func firstListValue(v string) string {
	first, _, _ := strings.Cut(v, ",")
	return strings.TrimSpace(first)
}
