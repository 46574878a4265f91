package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pushd/push/client"
	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// copyFile copies src over dst.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst+".tmp", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dst+".tmp", dst); err != nil {
		t.Fatal(err)
	}
}

// servedSerial returns the serial of the certificate a new TLS connection
// to addr is served.
func servedSerial(ca *pushdtest.CA, addr string) (*big.Int, error) {
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool, ServerName: "127.0.0.1"})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber, nil
}

// pushd serves HTTPS with a certificate of a private CA: the Go client
// reaches it over every transport with that CA's roots, SSE streams share
// one HTTP/2 connection, WebSocket upgrades over HTTP/1.1, a token's expiry
// ends an SSE stream on HTTP/2 too, and SIGHUP loads a renewed certificate
// without a restart (a broken one is refused, and the last kept).
func TestTLS(t *testing.T) {
	ca := pushdtest.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	c1, k1, first := ca.Issue(t)
	copyFile(t, c1, certFile)
	copyFile(t, k1, keyFile)
	p := startPushd(t, append([]string{"--store", "memory", "--tls-cert", certFile, "--tls-key", keyFile, "--auth-secret-file", secretFile(t)}, noLimits...)...)
	addr := strings.TrimPrefix(p.URL, "http://")
	base := "https://" + addr
	tok := token(t, "ann", server.Claims{Rooms: []string{"*"}, Publish: true})

	c, err := client.New(base, client.WithRootCAs(ca.Pool), client.WithToken(tok))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), pushdtest.Timeout)
	defer cancel()
	var subs []*client.Subscription
	for _, tr := range []client.Transport{client.TransportWebSocket, client.TransportSSE, client.TransportLongPoll, client.TransportPoll} {
		sub := c.Subscribe(ctx, client.Room("tls"), client.SubscribeOptions{Transport: tr, Since: "0", PollInterval: 20 * time.Millisecond})
		defer sub.Close()
		subs = append(subs, sub)
	}
	// everyGets publishes text and checks that every subscription reads it.
	everyGets := func(text string) {
		t.Helper()
		if _, err := c.Publish(ctx, "tls", text); err != nil {
			t.Fatal(err)
		}
		for _, sub := range subs {
			select {
			case ev := <-sub.Events():
				if ev.Text != text {
					t.Fatalf("%s: %+v; want %q", sub.Transport(), ev, text)
				}
			case <-ctx.Done():
				t.Fatalf("%s: no %q: %v", sub.Transport(), text, sub.Err())
			}
		}
	}
	everyGets("over TLS")
	if got := subs[0].Transport(); got != client.TransportWebSocket {
		t.Fatalf("first subscription's transport %s; want ws", got)
	}

	// Two SSE streams from one client share one HTTP/2 connection.
	h2 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool}, ForceAttemptHTTP2: true}}
	defer h2.CloseIdleConnections()
	sse := func(tok string) (*http.Response, bool) {
		reused := false
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, base+"/v1/rooms/tls/events?since=0", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := h2.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
			t.Fatalf("SSE over TLS: %d %s; want 200 over HTTP/2", resp.StatusCode, resp.Proto)
		}
		return resp, reused
	}
	one, _ := sse(tok)
	defer one.Body.Close()
	short := pushdtest.Token(t, []byte(testSecret), "ann", server.Claims{Rooms: []string{"*"}}, 1500*time.Millisecond)
	two, reused := sse(short)
	defer two.Body.Close()
	if !reused {
		t.Fatal("the second SSE stream opened a connection of its own; want it on the first's HTTP/2 connection")
	}
	// The short token's stream ends with the close event when it expires.
	body, err := io.ReadAll(two.Body)
	if err != nil {
		t.Fatalf("read the stream to its end: %v", err)
	}
	if !strings.Contains(string(body), "event: close\ndata: {\"message\":") || !strings.Contains(string(body), `"reason":"`+protocol.CloseTokenExpired+`"`) {
		t.Fatalf("the expired token's stream ended with %q; want a close event with reason %s", body, protocol.CloseTokenExpired)
	}

	// A renewed certificate is served after SIGHUP, to new connections.
	c2, k2, second := ca.Issue(t)
	copyFile(t, c2, certFile)
	copyFile(t, k2, keyFile)
	if got, err := servedSerial(ca, addr); err != nil || got.Cmp(first.SerialNumber) != 0 {
		t.Fatalf("before SIGHUP: serial %v (%v); want %v", got, err, first.SerialNumber)
	}
	p.Signal(t, syscall.SIGHUP)
	testwait.Until(t, pushdtest.Timeout, 20*time.Millisecond, func() error {
		got, err := servedSerial(ca, addr)
		if err != nil || got.Cmp(second.SerialNumber) != 0 {
			return fmt.Errorf("serial %v (%v); want %v", got, err, second.SerialNumber)
		}
		return nil
	})
	// Streams that were open go on.
	everyGets("after SIGHUP")
	// A broken certificate is not taken: the last one stays.
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.Signal(t, syscall.SIGHUP)
	p.WaitLog(t, "TLS certificate not reloaded")
	if got, err := servedSerial(ca, addr); err != nil || got.Cmp(second.SerialNumber) != 0 {
		t.Fatalf("after a broken certificate: serial %v (%v); want the last good one, %v", got, err, second.SerialNumber)
	}
	p.WaitLog(t, "SIGHUP: TLS certificate reloaded")
}
