package server_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pushd/push/internal/pushdtest"
)

// The package's tests run servers with internal/pushdtest; what is here
// are raw TCP clients that stop reading, for the slow-consumer tests.

// TestMain fails the package if any test leaves a goroutine behind: every
// server is shut down and every client connection closed by the tests'
// cleanups.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// smallBufferDialer dials with a small receive buffer, so that a client
// that stops reading makes the server's writes block soon.
var smallBufferDialer = &net.Dialer{
	Timeout: pushdtest.Timeout,
	Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	},
}

// rawSSE sends an event-stream request by hand on a connection with a small
// receive buffer and reads nothing: the caller decides when to read. It
// returns the connection, closed on cleanup.
func rawSSE(t testing.TB, p *pushdtest.Server, path string, header ...string) net.Conn {
	t.Helper()
	addr := strings.TrimPrefix(p.URL, "http://")
	c, err := smallBufferDialer.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nAccept: text/event-stream\r\n"
	for i := 0; i+1 < len(header); i += 2 {
		req += header[i] + ": " + header[i+1] + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	return c
}

// readRawSSE reads the answer to rawSSE's request: its status line and
// headers, then the frames.
func readRawSSE(t testing.TB, c net.Conn) (*http.Response, *bufio.Reader) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(pushdtest.Timeout))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read SSE answer: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("SSE answer %d", resp.StatusCode)
	}
	return resp, bufio.NewReader(resp.Body)
}

// rawRequest sends req as it is written on a connection of its own to p
// (closed on cleanup) and reads the answer's head: for requests no HTTP
// client sends, such as a body that stops short or an upgrade made by
// hand. The reader holds what follows the head on the connection.
func rawRequest(t testing.TB, p *pushdtest.Server, req string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(p.URL, "http://"), pushdtest.Timeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(pushdtest.Timeout))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer to %q: %v", strings.SplitN(req, "\r\n", 2)[0], err)
	}
	return c, br, resp
}

// rawAnswer is rawRequest for a request whose answer is all the test
// needs: it returns the answer with its body read.
func rawAnswer(t testing.TB, p *pushdtest.Server, req string) (*http.Response, string) {
	t.Helper()
	_, _, resp := rawRequest(t, p, req)
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read the answer to %q: %v", strings.SplitN(req, "\r\n", 2)[0], err)
	}
	return resp, string(body)
}

// smallBufferClient is an HTTP client (for WebSockets) whose connections
// have a small receive buffer.
func smallBufferClient(t testing.TB) *http.Client {
	tr := &http.Transport{DialContext: smallBufferDialer.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}
