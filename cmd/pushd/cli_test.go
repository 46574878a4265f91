package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pushd/push/internal/pushdtest"
)

// execute runs pushd with args in this process, as main does, and returns
// the exit code and what it printed. A server it starts by mistake stops
// after 20 s.
func execute(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	cmd, err := root.ExecuteContextC(ctx)
	code = exitCode(err, cmd, &errOut)
	return code, out.String(), errOut.String()
}

// runPushd runs pushd with args as a process and returns its exit status
// and output.
func runPushd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := pushdtest.ProgramCommand(ctx, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		code = ee.ExitCode()
	default:
		t.Fatalf("pushd %v: %v\n%s", args, err, errOut.String())
	}
	return code, out.String(), errOut.String()
}

// The process exits 2 for a mistake on the command line and 1 for a
// failure while running, with one line that says what is wrong.
func TestExitCodes(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	secret := secretFile(t)
	missing := filepath.Join(t.TempDir(), "missing")
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"serve", "--bogus"}, 2, "pushd: unknown flag: --bogus (see pushd serve --help)"},
		{[]string{"serve", "--history", "many"}, 2, `invalid argument "many" for "--history"`},
		{[]string{"serve", "extra"}, 2, `unknown command "extra" for "pushd serve"`},
		{[]string{"serv"}, 2, `pushd: unknown command "serv" for "pushd"; did you mean serve? (see pushd --help)`},
		{[]string{"serve", "--store", "nope"}, 2, `--store "nope"`},
		{[]string{"serve", "--addr", "nonsense"}, 2, `--addr "nonsense"`},
		{[]string{"token", "--auth-secret-file", secret}, 2, "--user is required"},
		{[]string{"token", "--user", "alice"}, 2, "give the server's secret"},
		{[]string{"token", "--auth-secret-file", secret, "--user", "alice", "--rooms", "bad room"}, 2, `room name "bad room"`},
		{[]string{"bench", "--transport", "pigeon"}, 2, `--transport "pigeon"`},
		{[]string{"token", "--auth-secret-file", missing, "--user", "alice"}, 1, "--auth-secret-file: open " + missing},
		{[]string{"serve", "--store", "memory", "--addr", busy.Addr().String()}, 1, "listen on " + busy.Addr().String()},
		{[]string{"serve", "--nats-creds", missing, "--nats", "nats://127.0.0.1:1"}, 1, "--nats-creds: stat " + missing},
		{[]string{"serve", "--help"}, 0, ""},
		{[]string{}, 0, ""},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, _, stderr := runPushd(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Fatalf("pushd %v: exit %d, stderr:\n%s\nwant exit %d and %q", tc.args, code, stderr, tc.code, tc.want)
			}
			if tc.code == 2 && strings.Count(stderr, "\n") != 1 {
				t.Fatalf("pushd %v: stderr has %d lines, want 1:\n%s", tc.args, strings.Count(stderr, "\n"), stderr)
			}
		})
	}
}

func TestServeAddrErrors(t *testing.T) {
	tests := []struct {
		addr string
		want string
	}{
		{"nonsense", `--addr "nonsense": missing port in address; want host:port, such as 127.0.0.1:8080`},
		{"127.0.0.1", `--addr "127.0.0.1": missing port in address`},
		{"127.0.0.1:99999", `--addr "127.0.0.1:99999": the port must be a number from 0 to 65535`},
		{"127.0.0.1:-1", "the port must be a number from 0 to 65535"},
		{"127.0.0.1:", "the port must be a number from 0 to 65535"},
		{"localhost:80a", "the port must be a number from 0 to 65535"},
		{"[::1:80", `--addr "[::1:80": missing ']' in address`},
		{"::1:80", "too many colons in address"},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			// Without a secret, and not on loopback: the address is still
			// what is reported.
			code, _, stderr := execute(t, "serve", "--store", "memory", "--addr", tc.addr)
			if code != exitUsage || !strings.Contains(stderr, tc.want) || strings.Contains(stderr, "refusing") {
				t.Fatalf("pushd serve --addr %s: exit %d, %q; want exit 2 and %q", tc.addr, code, stderr, tc.want)
			}
		})
	}
	// A host that names nothing is refused when listening, as a mistake
	// on the command line too.
	for addr, want := range map[string]string{
		"256.0.0.1:1": `--addr "256.0.0.1:1": lookup 256.0.0.1: no such host; want host:port`,
		"bad host:80": `--addr "bad host:80": lookup bad host: no such host`,
	} {
		t.Run(addr, func(t *testing.T) {
			code, _, stderr := execute(t, "serve", "--store", "memory", "--insecure-open", "--addr", addr)
			if code != exitUsage || !strings.Contains(stderr, want) {
				t.Fatalf("pushd serve --addr %s: exit %d, %q; want exit 2 and %q", addr, code, stderr, want)
			}
		})
	}
	code, _, stderr := execute(t, "serve", "--store", "memory", "--pprof", "6060")
	if code != exitUsage || !strings.Contains(stderr, `--pprof "6060": missing port in address`) {
		t.Fatalf("pushd serve --pprof 6060: exit %d, %q; want exit 2 and the address refused", code, stderr)
	}
	for _, addr := range []string{"127.0.0.1:0", "127.0.0.1:8080", ":8080", "[::1]:8080", "localhost:65535", "0.0.0.0:80", "[fe80::1%eth0]:80", "pushd-1.example.com.:443"} {
		if err := checkListenAddr("--addr", addr); err != nil {
			t.Errorf("checkListenAddr(%q): %v; want it accepted", addr, err)
		}
	}
}

// Every mistake in the flags is reported before the server says anything,
// in particular before it warns that it runs open.
func TestConfigErrorsBeforeWarnings(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--history", "0"}, "--history 0"},
		{[]string{"serve", "--store", "nope"}, `--store "nope"`},
		{[]string{"serve", "--store", "nats"}, "--store nats needs --nats URL"},
		{[]string{"serve", "--nats", "nats://127.0.0.1:1", "--nats-replicas", "7"}, "--nats-replicas 7"},
		{[]string{"serve", "--nats", "nats://127.0.0.1:1", "--nats-prefix", "a.b"}, `--nats-prefix: prefix "a.b"`},
		{[]string{"serve", "--nats", "nats://127.0.0.1:1", "--nats-prefix", "pushd:eu"}, `--nats-prefix: prefix "pushd:eu"`},
		{[]string{"serve", "--store", "memory", "--pprof", "nonsense"}, `--pprof "nonsense"`},
		{[]string{"serve", "--store", "memory", "--heartbeat", "0"}, "--heartbeat 0s: give a positive duration"},
		{[]string{"serve", "--store", "memory", "--presence-grace", "-1s"}, "--presence-grace -1s: give a positive duration"},
		{[]string{"serve", "--store", "memory", "--max-tasks", "0"}, "--max-tasks 0: give 1 or more"},
		{[]string{"serve", "--store", "memory", "--max-rooms", "-1"}, "--max-rooms -1: give 1 or more"},
		{[]string{"serve", "--store", "memory", "--publish-burst", "0"}, "--publish-burst 0: give 1 or more"},
		{[]string{"serve", "--store", "memory", "--max-conns-per-ip", "-2"}, "give 0 (no limit) or more"},
		{[]string{"serve", "--store", "memory", "--max-text", "65536"}, "--max-body 65536: leave room for a message of --max-text 65536 bytes"},
		{[]string{"serve", "--store", "memory", "--addr", "0.0.0.0:0"}, "refusing to listen on 0.0.0.0:0 without authentication"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, _, stderr := runPushd(t, tc.args...)
			if code != exitUsage || !strings.Contains(stderr, tc.want) {
				t.Fatalf("pushd %v: exit %d, stderr:\n%s\nwant exit 2 and %q", tc.args, code, stderr, tc.want)
			}
			if strings.Contains(stderr, "running open") || strings.Contains(stderr, "level=") {
				t.Fatalf("pushd %v logged before reporting the mistake:\n%s", tc.args, stderr)
			}
		})
	}

	// A good configuration without a secret warns, then starts.
	p := startPushd(t, "--store", "memory")
	log := p.Log()
	warn, listen := strings.Index(log, "running open"), strings.Index(log, "pushd listening")
	if warn < 0 || listen < warn {
		t.Fatalf("pushd serve without a secret: want the running-open warning, then listening:\n%s", log)
	}
}

func TestTokenRooms(t *testing.T) {
	secret := secretFile(t)
	bad := []struct {
		rooms string
		want  string
	}{
		{"bad room", `--rooms: room name "bad room": use 1 to 64 of A-Z a-z 0-9 . _ -`},
		{"lobby,bad/room", `room name "bad/room"`},
		{"..", `room name "..": a name cannot be only dots`},
		{strings.Repeat("a", 65), "use 1 to 64 of"},
		{"", "--rooms is empty"},
		{"  ", "--rooms is empty"},
		{"lobby,", `--rooms "lobby,": room 2 is empty`},
		{"lobby,,dev", `--rooms "lobby,,dev": room 2 is empty`},
		{"dev *", `--rooms: room pattern "dev *" matches no room; room names use 1 to 64 of A-Z a-z 0-9 . _ - (not only dots)`},
		{"[ /]*", `pattern "[ /]*" matches no room`},
		{"[.]", `pattern "[.]" matches no room`},
		{"?" + strings.Repeat("a", 64) + "*", "matches no room"},
		{"dev-[", `--rooms: room pattern "dev-[": syntax error in pattern`},
	}
	for _, tc := range bad {
		t.Run(tc.rooms, func(t *testing.T) {
			code, stdout, stderr := execute(t, "token", "--auth-secret-file", secret, "--user", "alice", "--rooms", tc.rooms)
			if code != exitUsage || !strings.Contains(stderr, tc.want) || stdout != "" {
				t.Fatalf("pushd token --rooms %q: exit %d, stdout %q, stderr %q; want exit 2, no token and %q", tc.rooms, code, stdout, stderr, tc.want)
			}
		})
	}
	for _, rooms := range []string{"lobby", "lobby, dev-*", "*", "?", ".*", "*.", "a.b", "[a-c]x", "[^a]", `dev\-1`, "[ .a]" + strings.Repeat("b", 63), "Z_9-."} {
		code, stdout, stderr := execute(t, "token", "--auth-secret-file", secret, "--user", "alice", "--rooms", rooms)
		if code != exitOK || strings.Count(stdout, ".") != 2 {
			t.Errorf("pushd token --rooms %q: exit %d, %q %q; want a token", rooms, code, stdout, stderr)
		}
	}
	for _, tc := range []struct{ args, want string }{
		{"--user=a b", `--user: user name "a b": use 1 to 64 of`},
		{"--ttl=0s", "--ttl 0s: the token's lifetime must be positive"},
	} {
		code, stdout, stderr := execute(t, "token", "--auth-secret-file", secret, "--user", "alice", tc.args)
		if code != exitUsage || !strings.Contains(stderr, tc.want) || stdout != "" {
			t.Errorf("pushd token %s: exit %d, %q %q; want exit 2 and %q", tc.args, code, stdout, stderr, tc.want)
		}
	}
	// Without --rooms: a token for no room (tasks only, say).
	if code, stdout, stderr := execute(t, "token", "--auth-secret-file", secret, "--user", "alice", "--tasks"); code != exitOK || stdout == "" {
		t.Fatalf("pushd token without --rooms: exit %d, %q %q; want a token", code, stdout, stderr)
	}
}

// A token minted for a pattern opens the rooms it matches on a server with
// the same secret, and no other.
func TestTokenWorksOnTheServer(t *testing.T) {
	secret := secretFile(t)
	code, stdout, stderr := runPushd(t, "token", "--auth-secret-file", secret, "--user", "alice", "--rooms", "lobby, dev-?")
	if code != exitOK {
		t.Fatalf("pushd token: exit %d: %s", code, stderr)
	}
	token := strings.TrimSpace(stdout)
	p := startPushd(t, "--store", "memory", "--auth-secret-file", secret)
	for room, want := range map[string]int{"lobby": http.StatusOK, "dev-1": http.StatusOK, "dev-12": http.StatusForbidden, "ops": http.StatusForbidden} {
		if a := p.Get(t, "/v1/rooms/"+room+"/presence", "Authorization", "Bearer "+token); a.Status != want {
			t.Errorf("GET presence of %s with the token: %d, want %d", room, a.Status, want)
		}
	}
}

// pushd token --admin mints a token with the admin claim.
func TestTokenAdmin(t *testing.T) {
	secret := secretFile(t)
	for _, admin := range []bool{false, true} {
		args := []string{"token", "--auth-secret-file", secret, "--user", "root"}
		if admin {
			args = append(args, "--admin")
		}
		code, stdout, stderr := execute(t, args...)
		parts := strings.Split(strings.TrimSpace(stdout), ".")
		if code != exitOK || len(parts) != 3 {
			t.Fatalf("pushd %v: exit %d, %q %q", args, code, stdout, stderr)
		}
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		var claims struct {
			Admin bool `json:"admin"`
		}
		if err != nil || json.Unmarshal(payload, &claims) != nil || claims.Admin != admin {
			t.Errorf("pushd %v: claims %s; want admin %v", args, payload, admin)
		}
	}
}
