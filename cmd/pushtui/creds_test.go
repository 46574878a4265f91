package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pushd/push/client"
	"github.com/pushd/push/internal/cli"
	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/server"
)

// startTLSServer runs pushd over HTTPS (HTTP/2 offered) with a certificate
// of ca, needing tokens of testSecret.
func startTLSServer(t *testing.T, ca *pushdtest.CA) string {
	t.Helper()
	srv, err := server.New(server.Config{AuthSecret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv)
	ts.TLS = ca.ServerConfig(t)
	ts.EnableHTTP2 = true
	ts.StartTLS()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		ts.CloseClientConnections()
		ts.Close()
	})
	return ts.URL
}

// tokenFiles writes tokens for user that last each of ttls, in turn, and
// returns a --token-cmd that prints the next of them each time it runs
// (the last again once all are used), and the file that counts the runs.
func tokenFiles(t *testing.T, user string, ttls ...time.Duration) (cmd, runs string) {
	t.Helper()
	dir := t.TempDir()
	for i, ttl := range ttls {
		tok := pushdtest.Token(t, testSecret, user, server.Claims{Rooms: []string{"*"}, Publish: true, Tasks: true}, ttl)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprint("token.", i)), []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	runs = filepath.Join(dir, "runs")
	if err := os.WriteFile(runs, []byte("0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	last := len(ttls) - 1
	cmd = fmt.Sprintf(`cd %s && n=$(cat runs) && echo $((n+1)) > runs && if [ $n -gt %d ]; then n=%d; fi && cat token.$n`, dir, last, last)
	return cmd, runs
}

// pushtui reaches an HTTPS server whose certificate a private CA signed
// with --ca, and refuses it without; with --token-cmd it takes a new
// token whenever one expires, and a chat shows every message once.
func TestCAAndTokenCommand(t *testing.T) {
	ca := pushdtest.NewCA(t)
	url := startTLSServer(t, ca)
	cmd, runs := tokenFiles(t, "tester", time.Hour)
	if _, errOut, code := pushtui(t, nil, "--server", url, "--token-cmd", cmd, "send", "--room", "tls", "hi"); code != cli.ExitFailed || !strings.Contains(errOut, "certificate") {
		t.Fatalf("without --ca: exit %d %q; want 1 saying the certificate is not trusted", code, errOut)
	}
	if _, errOut, code := pushtui(t, nil, "--server", url, "--ca", ca.File, "--token-cmd", cmd, "send", "--room", "tls", "hi"); code != 0 {
		t.Fatalf("with --ca: exit %d %q", code, errOut)
	}
	r := start(t, nil, env("PUSH_CA="+ca.File, "PUSH_SERVER="+url, "PUSH_TOKEN_CMD="+cmd), "send", "--room", "tls", "from the environment")
	r.exits(t, 0)

	// Tokens of a second, three seconds, then an hour: the chat renews
	// twice and misses nothing.
	cmd, runs = tokenFiles(t, "tester", 1500*time.Millisecond, 3500*time.Millisecond, time.Hour)
	chat := start(t, nil, nil, "--server", url, "--ca", ca.File, "--token-cmd", cmd, "--transport", "ws", "chat", "--room", "tls", "--plain", "--follow")
	chat.out.waitContains(t, "from the environment")
	pub, err := client.New(url, client.WithRootCAs(ca.Pool), client.WithToken(token(t, "pub", server.Claims{Rooms: []string{"*"}, Publish: true})))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		// Each message after the token in use has been replaced.
		waitUntil(t, func() error {
			b, _ := os.ReadFile(runs)
			if n, _ := strconv.Atoi(strings.TrimSpace(string(b))); n < i+1 {
				return fmt.Errorf("--token-cmd ran %d times; waiting for run %d", n, i+1)
			}
			return nil
		})
		if _, err := pub.Publish(t.Context(), "tls", fmt.Sprint("message ", i)); err != nil {
			t.Fatal(err)
		}
		chat.out.waitContains(t, fmt.Sprint("message ", i))
	}
	if code := chat.stop(t); code != cli.ExitInterrupted {
		t.Fatalf("chat: exit %d %q", code, chat.errOut.String())
	}
	for i := range 3 {
		if n := strings.Count(chat.out.String(), fmt.Sprint("message ", i)); n != 1 {
			t.Fatalf("message %d shown %d times:\n%s", i, n, chat.out.String())
		}
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, errOut, code := pushtui(t, nil, args...)
		if code != 0 || !strings.HasPrefix(out, "pushtui ") || !strings.Contains(out, runtime.Version()) {
			t.Errorf("pushtui %v: exit %d %q %q", args, code, out, errOut)
		}
	}
}
