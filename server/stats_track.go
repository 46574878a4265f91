package server

import (
	"cmp"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/pushd/push/protocol"
)

// tracker knows the server's open subscriptions to its hub's streams, with
// who and where they are, for the stats. It is touched when a subscription
// opens and when it closes, never per event: how far each one got is in
// the subscription's own atomics (handed, sent), which the stats read.
// Its methods are safe for concurrent use.
type tracker struct {
	mu      sync.Mutex
	streams map[*stream]*trackedStream
	byKind  map[string]int // open subscriptions by transport
	gone    uint64         // events handed to subscriptions that have closed
}

// trackedStream is a stream's open subscriptions.
type trackedStream struct {
	subs map[*subscription]*subInfo
}

// subInfo is what the stats show of a subscription beside its position.
type subInfo struct {
	transport string
	addr      string
	user      string
	since     time.Time
}

func newTracker() *tracker {
	return &tracker{streams: make(map[*stream]*trackedStream), byKind: make(map[string]int)}
}

// track counts a subscription of a request in, until the returned cleanup,
// which then runs cleanup. Streams of the stats hub are not counted.
func (s *Server) track(r *http.Request, t eventsTarget, sub *subscription, transport string, cleanup func()) func() {
	if t.hub != nil {
		return cleanup
	}
	// The connection's address and port; behind a trusted proxy, the
	// client's address it forwards.
	addr := r.RemoteAddr
	if ip := s.clientIP(r); ip != peerIP(r) {
		addr = ip
	}
	info := &subInfo{transport: transport, addr: addr, user: t.user, since: time.Now()}
	if info.user == "" && t.viewer != nil {
		info.user = t.viewer.user
	}
	sub.handed.Store(sub.cursor)
	s.tracker.add(sub, info)
	return func() {
		s.tracker.remove(sub, transport)
		cleanup()
	}
}

func (tr *tracker) add(sub *subscription, info *subInfo) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	ts := tr.streams[sub.st]
	if ts == nil {
		ts = &trackedStream{subs: make(map[*subscription]*subInfo)}
		tr.streams[sub.st] = ts
	}
	ts.subs[sub] = info
	tr.byKind[info.transport]++
}

func (tr *tracker) remove(sub *subscription, transport string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.byKind[transport]--
	ts := tr.streams[sub.st]
	if ts == nil {
		return
	}
	delete(ts.subs, sub)
	sent := sub.sent.Load()
	sub.st.handedGone.Add(sent)
	tr.gone += sent
	if len(ts.subs) == 0 {
		delete(tr.streams, sub.st)
	}
}

// connections returns the open subscriptions by transport.
func (tr *tracker) connections() map[string]int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	out := map[string]int{transportWS: 0, transportSSE: 0, transportLongPoll: 0}
	for k, n := range tr.byKind {
		out[k] = n
	}
	return out
}

// subView is a subscription as the stats see it at one moment.
type subView struct {
	sub  *subscription
	info *subInfo
}

// streamView is a stream's subscriptions, and the events handed to all
// of them so far, at one moment.
type streamView struct {
	subs []subView
	sent uint64
}

// view returns every tracked stream's subscriptions, and the events
// handed to every subscription so far. The lock is held only while they
// are listed; their positions are read after.
func (tr *tracker) view() (map[*stream]streamView, uint64) {
	tr.mu.Lock()
	out := make(map[*stream]streamView, len(tr.streams))
	for st, ts := range tr.streams {
		out[st] = ts.list(st)
	}
	sent := tr.gone
	tr.mu.Unlock()
	for st, v := range out {
		closed := v.sent // in tr.gone already
		v = v.counted()
		sent += v.sent - closed
		out[st] = v
	}
	return out, sent
}

// viewOf returns st's subscriptions, as view does.
func (tr *tracker) viewOf(st *stream) streamView {
	tr.mu.Lock()
	v := tr.streams[st].list(st)
	tr.mu.Unlock()
	return v.counted()
}

// list lists the subscriptions of st (none for nil), with the events
// handed to those that have closed; the tracker's lock is held.
func (ts *trackedStream) list(st *stream) streamView {
	v := streamView{sent: st.handedGone.Load()}
	if ts == nil {
		return v
	}
	v.subs = make([]subView, 0, len(ts.subs))
	for sub, info := range ts.subs {
		v.subs = append(v.subs, subView{sub: sub, info: info})
	}
	return v
}

// counted adds the events handed to each subscription to v.sent.
func (v streamView) counted() streamView {
	for _, sv := range v.subs {
		v.sent += sv.sub.sent.Load()
	}
	return v
}

// lag is how far sub is behind head.
func lag(sub *subscription, head uint64) uint64 {
	if at := sub.handed.Load(); at < head {
		return head - at
	}
	return 0
}

// describe returns the subscriptions of a stream whose head is head as
// the stats show them, furthest behind first, then longest connected.
func describe(name string, head uint64, subs []subView, node string) []protocol.SubscriberStats {
	out := make([]protocol.SubscriberStats, 0, len(subs))
	for _, sv := range subs {
		out = append(out, protocol.SubscriberStats{Stream: name, Transport: sv.info.transport, Addr: sv.info.addr,
			User: sv.info.user, Lag: lag(sv.sub, head), Since: sv.info.since, Node: node})
	}
	sortSubscribers(out)
	return out
}

// sortSubscribers puts the furthest behind first, then the longest
// connected, then by address.
func sortSubscribers(subs []protocol.SubscriberStats) {
	slices.SortFunc(subs, func(a, b protocol.SubscriberStats) int {
		return cmp.Or(cmp.Compare(b.Lag, a.Lag), a.Since.Compare(b.Since), cmp.Compare(a.Addr, b.Addr), cmp.Compare(a.Node, b.Node))
	})
}
