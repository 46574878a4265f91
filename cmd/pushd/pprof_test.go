package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pushd/push/internal/pushdtest"
)

// The profiles listen on loopback only, answer only to loopback hosts
// (not to a page rebound to 127.0.0.1), and never show the secret given
// on the command line.
func TestPprofIsLoopbackOnlyAndShowsNoSecret(t *testing.T) {
	const secret = "a-secret-on-the-command-line-0123"
	addr := pushdtest.FreeAddr(t)
	startPushd(t, "--store", "memory", "--auth-secret", secret, "--pprof", addr, "--nats-creds", "", "--allow-origin=nats://u:hunter2@example.com")
	get := func(host, path string) (int, string) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	status, cmdline := get(addr, "/debug/pprof/cmdline")
	if status != http.StatusOK || !strings.Contains(cmdline, "--auth-secret\x00********") {
		t.Fatalf("cmdline: %d %q; want the secret masked", status, cmdline)
	}
	if strings.Contains(cmdline, secret) || strings.Contains(cmdline, "hunter2") {
		t.Fatalf("cmdline shows a secret: %q", cmdline)
	}
	for _, host := range []string{"localhost", "[::1]:6060", "127.0.0.1"} {
		if status, _ := get(host, "/debug/pprof/"); status != http.StatusOK {
			t.Errorf("Host %s: %d; want 200", host, status)
		}
	}
	if status, body := get("rebind.example:6060", "/debug/pprof/cmdline"); status != http.StatusMisdirectedRequest || strings.Contains(body, secret) {
		t.Fatalf("a rebound page: %d %q; want 421", status, body)
	}

	code, _, stderr := execute(t, "serve", "--store", "memory", "--pprof", "0.0.0.0:6060")
	if code != exitUsage || !strings.Contains(stderr, "loopback only") {
		t.Fatalf("--pprof 0.0.0.0:6060: exit %d %q; want exit 2, loopback only", code, stderr)
	}
}

func TestMaskArgs(t *testing.T) {
	got := maskArgs([]string{"pushd", "serve", "--auth-secret", "s1", "-auth-secret=s2", "--auth-secret=s3", "--nats", "nats://u:pw@h:4222,nats://tok@h2",
		"--nats=nats://u:pw2@h", "--history", "5"})
	want := []string{"pushd", "serve", "--auth-secret", "********", "-auth-secret=********", "--auth-secret=********", "--nats", "nats://u:xxxxx@h:4222,nats://xxxxx@h2",
		"--nats=nats://u:xxxxx@h", "--history", "5"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("maskArgs:\n got %q\nwant %q", got, want)
	}
}
