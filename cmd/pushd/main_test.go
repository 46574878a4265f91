package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/server"
)

// The test binary doubles as pushd (pushdtest.ProgramCommand), so tests
// can kill a real server process with SIGKILL and start it again.
func TestMain(m *testing.M) {
	pushdtest.AsProgram("pushd", func() int {
		main()
		return 0
	})
	code := m.Run()
	pushdtest.RemoveBuilt() // pushd top's test runs a built pushd in tmux
	os.Exit(code)
}

// startPushd starts pushd serve (this test binary, as pushd) on a free
// loopback port with args and waits until it listens.
func startPushd(t *testing.T, args ...string) *pushdtest.Process {
	t.Helper()
	return pushdtest.StartProcess(t, pushdtest.ProgramCommand(context.Background(), append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...))
}

// testSecret is the token secret of the servers in these tests that
// need one.
const testSecret = "a-test-secret-of-at-least-32-bytes"

// secretFile writes testSecret to a file, with the final newline files
// people write have, and returns its path.
func secretFile(t *testing.T) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, []byte(testSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// token mints a token of testSecret for user with claims, valid for an
// hour.
func token(t *testing.T, user string, claims server.Claims) string {
	t.Helper()
	return pushdtest.Token(t, []byte(testSecret), user, claims, time.Hour)
}

func TestServeFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"serve", "--store", "nope"}, 2, `--store "nope"`},
		{[]string{"serve", "--log-level", "loud"}, 2, `--log-level "loud"`},
		{[]string{"serve", "--history", "0", "--store", "memory"}, 2, "--history 0"},
		{[]string{"serve", "--addr", "256.0.0.1:1", "--store", "memory", "--insecure-open"}, 2, `--addr "256.0.0.1:1"`},
		{[]string{"serve", "extra"}, 2, "unknown command"},
		{[]string{"serve", "--addr", "0.0.0.0:0", "--store", "memory"}, 2, "refusing to listen on 0.0.0.0:0 without authentication"},
		{[]string{"serve", "--auth-secret", "short", "--store", "memory"}, 2, "at least 16 bytes"},
		{[]string{"serve", "--store", "nats"}, 2, "--store nats needs --nats URL"},
		{[]string{"serve", "--store", "memory", "--nats", "nats://127.0.0.1:4222"}, 2, "with --nats the store is NATS JetStream"},
		{[]string{"serve", "--nats", "nats://127.0.0.1:4222", "--nats-replicas", "7"}, 2, "--nats-replicas 7"},
		{[]string{"serve", "--nats", "nats://127.0.0.1:1", "--nats-timeout", "1s"}, 1, "connect to NATS at nats://127.0.0.1:1"},
		{[]string{"serve", "--nats", "nats://127.0.0.1:4222", "--nats-prefix", "a.b"}, 2, `prefix "a.b"`},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, _, stderr := execute(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Fatalf("pushd %v: exit %d, %q; want exit %d and an error mentioning %q", tc.args, code, stderr, tc.code, tc.want)
			}
		})
	}
}
