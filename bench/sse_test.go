package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/pushd/push/protocol"
)

// BenchmarkSSESession reads b.N events from one Server-Sent Events stream
// as a subscriber does: allocs/op is the allocations per event, which
// should round to zero (the reader and its buffers are reused).
func BenchmarkSSESession(b *testing.B) {
	n := b.N
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		buf := make([]byte, 0, 72<<10)
		buf = append(buf, "retry: 2000\n\n"...)
		for i := 1; i <= n; i++ {
			buf = appendSSEFrame(buf, i)
			if i%100 == 0 {
				buf = append(buf, ": heartbeat\n\n"...)
			}
			if len(buf) >= 64<<10 {
				if _, err := w.Write(buf); err != nil {
					return
				}
				buf = buf[:0]
			}
		}
		_, _ = w.Write(buf)
	}))
	defer srv.Close()
	o := DefaultOptions()
	o.Subscribers, o.Messages, o.Publishers = 1, n, 1
	r := &runner{o: o, base: srv.URL, room: "x", runID: "run", allDone: make(chan struct{}),
		subClient: srv.Client(), since: protocol.Cursor{Epoch: "e"}}
	s := newSubscriber(r, 0)
	b.ReportAllocs()
	b.ResetTimer()
	_ = s.sseSession(context.Background(), func() {})
	b.StopTimer()
	if got := s.unique.Load(); got != int64(n) {
		b.Fatalf("read %d of %d events", got, n)
	}
}

// appendSSEFrame appends the frame of message i (from 1) of the run "run",
// as pushd sends it.
func appendSSEFrame(buf []byte, i int) []byte {
	buf = append(buf, "id: e:"...)
	buf = strconv.AppendInt(buf, int64(i), 10)
	buf = append(buf, "\nevent: message\ndata: {\"seq\":"...)
	buf = strconv.AppendInt(buf, int64(i), 10)
	buf = append(buf, `,"epoch":"e","stream":"room/x","type":"message","time":"2026-01-02T03:04:05Z","user":"bench","text":"`...)
	buf = appendPayload(buf, "run", 0, i-1, 1, 64)
	return append(buf, "\"}\n\n"...)
}
