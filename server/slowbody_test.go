package server_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/server"
)

// A body that does not arrive within the read timeout gets its 408 with
// the error body, with the read and write timeouts alike (as by default):
// the answer has the write timeout after the body's deadline.
func TestSlowBodyGets408WithEqualTimeouts(t *testing.T) {
	const timeout = 300 * time.Millisecond
	s := pushdtest.Start(t, server.Config{ReadTimeout: timeout, WriteTimeout: timeout})
	addr := strings.TrimPrefix(s.URL, "http://")
	for _, path := range []string{"/v1/rooms/lobby/messages", "/v1/tasks"} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(pushdtest.Timeout))
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"user\":", path, addr)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%s: no answer to a slow body: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		conn.Close()
		if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), `"code":"timeout"`) {
			t.Fatalf("%s: slow body: %d %s; want 408 timeout", path, resp.StatusCode, body)
		}
	}
}
