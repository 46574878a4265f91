package pushdtest

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
)

// Fault is what a FaultyProxy does with one request.
type Fault int

const (
	// Pass forwards the request and its answer.
	Pass Fault = iota
	// LoseAnswer forwards the request, so the server acts on it, and cuts
	// the client's connection instead of answering.
	LoseAnswer
	// CutRequest cuts the client's connection before the request reaches
	// the server: the server never sees it.
	CutRequest
)

// FaultyProxy is an HTTP proxy in front of servers that loses answers and
// cuts requests where told to, as a network failing at the worst moments
// does. Streams (SSE, long polls, WebSocket upgrades) pass through.
type FaultyProxy struct {
	// URL is where clients connect.
	URL string

	targets []*url.URL
	next    atomic.Uint64 // round robin over targets
	decide  func(r *http.Request, n int) Fault
	posts   atomic.Int64
	client  *http.Client
	mu      sync.Mutex
	counts  map[Fault]int
}

// StartFaultyProxy starts a proxy to targets (base URLs), taking them in
// turn, request by request. decide is asked about each POST, n counting
// them from 1; other requests pass. It stops when the test ends.
func StartFaultyProxy(t testing.TB, decide func(r *http.Request, n int) Fault, targets ...string) *FaultyProxy {
	t.Helper()
	p := &FaultyProxy{decide: decide, counts: make(map[Fault]int)}
	for _, target := range targets {
		u, err := url.Parse(target)
		if err != nil {
			t.Fatal(err)
		}
		p.targets = append(p.targets, u)
	}
	tr := &http.Transport{}
	p.client = &http.Client{Transport: tr}
	rp := &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(p.target()); pr.Out.Host = pr.In.Host },
		FlushInterval: -1,
		Transport:     tr,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, "proxy: "+err.Error(), http.StatusBadGateway)
		},
	}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := Pass
		if r.Method == http.MethodPost {
			f = decide(r, int(p.posts.Add(1)))
		}
		p.mu.Lock()
		p.counts[f]++
		p.mu.Unlock()
		switch f {
		case CutRequest:
			cutConn(w)
		case LoseAnswer:
			p.forwardAndLose(w, r)
		default:
			rp.ServeHTTP(w, r)
		}
	}))
	p.URL = hs.URL
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
		tr.CloseIdleConnections()
	})
	return p
}

// target returns the next server in turn.
func (p *FaultyProxy) target() *url.URL {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.targets[int(p.next.Add(1)-1)%len(p.targets)]
}

// SetTargets replaces the servers requests go to (after one of them is
// gone, say).
func (p *FaultyProxy) SetTargets(t testing.TB, targets ...string) {
	t.Helper()
	var us []*url.URL
	for _, target := range targets {
		u, err := url.Parse(target)
		if err != nil {
			t.Fatal(err)
		}
		us = append(us, u)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.targets = us
}

// Count returns how many requests met fault f so far.
func (p *FaultyProxy) Count(f Fault) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[f]
}

// forwardAndLose sends r to a server, reads its whole answer, and cuts
// the client's connection instead of passing it on.
func (p *FaultyProxy) forwardAndLose(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	u := *p.target()
	u.Path, u.RawQuery = r.URL.Path, r.URL.RawQuery
	req, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), bytes.NewReader(body))
	if err == nil {
		req.Header = r.Header.Clone()
		if resp, err := p.client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	cutConn(w)
}

// cutConn closes the request's connection without an answer.
func cutConn(w http.ResponseWriter) {
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		_ = conn.Close()
	}
}
