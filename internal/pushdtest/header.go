package pushdtest

import (
	"net/http"
	"strings"
)

// WithHeader returns the server as reached by a client that sends header
// (name, value pairs) with every request, its subscriptions and polls
// too: a token ("Authorization", "Bearer ..."), the forwarding headers of
// a proxy, or "Host" for the host the request names (as a page of another
// name that resolves to the server's address would).
func (s *Remote) WithHeader(header ...string) *Remote {
	base := s.Client.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	r := newRemote(s.URL, &http.Client{Transport: headerTransport{base: base, header: header}})
	r.entered = s.entered
	return r
}

// headerTransport adds its header to every request.
type headerTransport struct {
	base   http.RoundTripper
	header []string
}

func (h headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	for i := 0; i+1 < len(h.header); i += 2 {
		if strings.EqualFold(h.header[i], "Host") {
			req.Host = h.header[i+1]
			continue
		}
		req.Header.Set(h.header[i], h.header[i+1])
	}
	return h.base.RoundTrip(req)
}
