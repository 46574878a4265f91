package pushdtest

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
)

// StatsPath is the stats stream's events path; StatsSnapshotPath its
// snapshot's.
const (
	StatsPath         = "/v1/admin/stats/events"
	StatsSnapshotPath = "/v1/admin/stats"
)

func init() {
	eventFields[protocol.TypeStats] = []string{"epoch", "seq", "stats", "stream", "time", "type"}
}

// Stats gets the stats snapshot (header: name, value pairs, such as a
// token), failing the test unless the answer is 200.
func (s *Server) Stats(t testing.TB, header ...string) protocol.Stats {
	t.Helper()
	a := s.Get(t, StatsSnapshotPath, header...)
	if a.Status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", StatsSnapshotPath, a.Status, a.Body)
	}
	var st protocol.Stats
	a.JSON(t, &st)
	return st
}

// WaitStats gets stats snapshots until cond accepts one, and returns it;
// it fails the test with cond's last error after Timeout.
func (s *Server) WaitStats(t testing.TB, cond func(protocol.Stats) error, header ...string) protocol.Stats {
	t.Helper()
	var st protocol.Stats
	testwait.Until(t, Timeout, 50*time.Millisecond, func() error {
		st = s.Stats(t, header...)
		return cond(st)
	})
	return st
}

// StreamStats returns the figures of stream in st, or an error naming the
// streams st has.
func StreamStats(st protocol.Stats, stream string) (protocol.StreamStats, error) {
	var names []string
	for _, ss := range st.Streams {
		if ss.Stream == stream {
			return ss, nil
		}
		names = append(names, ss.Stream)
	}
	return protocol.StreamStats{}, fmt.Errorf("no stream %s in the stats (they have %v)", stream, names)
}

// StallSSE opens an SSE subscription to path (with its query) on the
// server at base that reads the answer's head (and a few bytes more at
// most) and nothing after: once its
// socket buffers are full, the server's writes to it block, as they do for
// a client that has stopped reading. It is closed when the test ends.
func StallSSE(t testing.TB, base, path string) net.Conn {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, Timeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(Timeout))
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", path, u.Host); err != nil {
		t.Fatal(err)
	}
	// In small reads, so little after the head is taken off the socket.
	br := bufio.NewReaderSize(conn, 16)
	var head strings.Builder
	for !strings.HasSuffix(head.String(), "\r\n\r\n") {
		b, err := br.ReadByte()
		if err != nil {
			t.Fatalf("SSE answer head: %v (so far %q)", err, head.String())
		}
		head.WriteByte(b)
	}
	if !strings.HasPrefix(head.String(), "HTTP/1.1 200 ") {
		t.Fatalf("SSE answer: %q", head.String())
	}
	_ = conn.SetDeadline(time.Time{})
	return conn
}
