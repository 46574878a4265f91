package deploytest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testlog"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// binary finds a program: the environment variable's value, else the
// name on PATH or in /usr/sbin. Without it the test fails, saying how to
// install it.
func binary(t *testing.T, env, name string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p := "/usr/sbin/" + name; fileExists(p) {
		return p
	}
	t.Fatalf("%s is not installed: these tests run pushd behind a real %s. Install it (apt-get install %s; .ci/run does) or set %s to the binary", name, name, name, env)
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// readmeSite returns the code block in lang of README's section heading,
// with each old of the pairs (old, new) in it replaced by new; an old the
// block no longer has fails the test.
func readmeSite(t *testing.T, heading, lang string, oldNew ...string) string {
	t.Helper()
	md, err := Readme(".")
	if err != nil {
		t.Fatal(err)
	}
	site, err := ReadmeBlock(md, heading, lang, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(oldNew); i += 2 {
		if !strings.Contains(site, oldNew[i]) {
			t.Fatalf("README's block no longer has %q:\n%s", oldNew[i], site)
		}
		site = strings.ReplaceAll(site, oldNew[i], oldNew[i+1])
	}
	return site
}

// run starts a proxy process until the test ends and waits until addr
// accepts connections.
func run(t *testing.T, addr string, cmd *exec.Cmd, logs ...string) {
	t.Helper()
	var out testlog.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = pushdtest.Timeout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		// SIGTERM: nginx's master ends its workers, which hold the output
		// pipes, before it exits; the group is killed if it does not.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(pushdtest.Timeout):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", cmd.Path, out.String())
			for _, f := range logs {
				b, _ := os.ReadFile(f)
				t.Logf("%s:\n%s", f, b)
			}
		}
	})
	testwait.Until(t, pushdtest.Timeout, 20*time.Millisecond, func() error {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("%s exited: %v\n%s", cmd.Path, err, out.String())
		default:
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// startNginx runs nginx with site, a configuration of the http context
// (README's block, say), in a directory of the test's.
func startNginx(t *testing.T, site, addr string) {
	t.Helper()
	bin := binary(t, "PUSHD_NGINX", "nginx")
	dir := t.TempDir()
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	conf := fmt.Sprintf(`%s
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log info;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %[2]s/body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
%[3]s
}
`, user, dir, site)
	file := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, addr, exec.Command(bin, "-p", dir, "-c", file, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;"), filepath.Join(dir, "error.log"))
}

// startCaddy runs caddy with a Caddyfile's site block.
func startCaddy(t *testing.T, site, addr string) {
	t.Helper()
	bin := binary(t, "PUSHD_CADDY", "caddy")
	dir := t.TempDir()
	file := filepath.Join(dir, "Caddyfile")
	conf := "{\n\tadmin off\n\tauto_https off\n}\n\n" + site
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", file, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	run(t, addr, cmd)
}

// startPushd runs pushd with heartbeats every 200 ms, behind a proxy on
// 127.0.0.1 that it trusts.
func startPushd(t *testing.T) *pushdtest.Server {
	t.Helper()
	return pushdtest.Start(t, server.Config{
		Heartbeat: 200 * time.Millisecond, LongPollWait: 5 * time.Second,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
	}, pushdtest.LogLevel(0))
}

// checkThrough checks pushd through a proxy at url: every transport gets
// what is published, streams stay open across several of the proxy's read
// timeouts on heartbeats alone (idle), and a page served through the
// proxy may use the API (the forwarded host makes it the same origin).
func checkThrough(t *testing.T, srv *pushdtest.Server, url string, idle time.Duration) {
	t.Helper()
	px := srv.Via(t, url)
	room := "deploy"
	var watchers []*pushdtest.Watcher
	for _, kind := range append(pushdtest.Transports, pushdtest.ShortPoll) {
		// A long poll's wait is below the proxy's read timeout, as
		// README says it must be.
		watchers = append(watchers, px.Watch(t, kind, pushdtest.RoomPath(room), pushdtest.SubOptions{Since: "0", User: kind, Wait: idle / 5}))
	}
	has := func(text string) func([]protocol.Event) bool {
		return func(evs []protocol.Event) bool {
			return slices.ContainsFunc(evs, func(ev protocol.Event) bool { return ev.Text == text })
		}
	}
	px.Publish(t, room, "ann", "through the proxy")
	for _, w := range watchers {
		w.WaitFor(t, "the message", has("through the proxy"))
	}
	// Quiet streams outlive the proxy's read timeout on heartbeats: this
	// wait is the quiet, not a guess at how long something takes.
	quiet := time.Now()
	testwait.Until(t, pushdtest.Timeout, 50*time.Millisecond, func() error {
		if time.Since(quiet) < idle {
			return fmt.Errorf("quiet for %s of %s", time.Since(quiet).Round(time.Millisecond), idle)
		}
		return nil
	})
	px.Publish(t, room, "ann", "after a quiet while")
	for _, w := range watchers {
		evs := w.WaitFor(t, "the message after the quiet", has("after a quiet while"))
		if n := len(slices.DeleteFunc(evs, func(ev protocol.Event) bool { return ev.Type != protocol.TypeMessage })); n != 2 {
			t.Fatalf("%s: %d messages; want each of the 2 once: %s", w.Name(), n, pushdtest.Summary(evs))
		}
	}
	// A page served through the proxy is of pushd's own origin.
	a := px.Post(t, "/v1/rooms/"+room+"/messages", `{"user":"ann","text":"from the page"}`, "Origin", url)
	if a.Status != http.StatusCreated {
		t.Fatalf("a publish from a page of %s: %d %s; want 201", url, a.Status, a.Body)
	}
	a = px.Post(t, "/v1/rooms/"+room+"/messages", `{"user":"ann","text":"from elsewhere"}`, "Origin", "http://elsewhere.example")
	if a.Status != http.StatusForbidden || a.Header.Get("Access-Control-Allow-Origin") != "http://elsewhere.example" {
		t.Fatalf("a publish from another site's page: %d %v; want 403 the page can read", a.Status, a.Header)
	}
}

// pushd behind nginx, configured as README says, works over every
// transport; nginx's read timeout is cut to a second here, which the
// heartbeats keep quiet streams within.
func TestNginxAsDocumented(t *testing.T) {
	srv := startPushd(t)
	addr := pushdtest.FreeAddr(t)
	site := readmeSite(t, "### Behind nginx", "nginx",
		"listen 80;", "listen "+addr+";",
		"server 127.0.0.1:8080;", "server "+strings.TrimPrefix(srv.URL, "http://")+";",
		"proxy_read_timeout 1h;", "proxy_read_timeout 1s;")
	startNginx(t, site, addr)
	checkThrough(t, srv, "http://"+addr, 3*time.Second)
}

// nginx with nothing but proxy_pass does not pass WebSocket upgrades:
// pushd answers the handshake with a 400 that names the settings to fix.
func TestNginxMinimalRefusesWebSocketClearly(t *testing.T) {
	srv := startPushd(t)
	addr := pushdtest.FreeAddr(t)
	startNginx(t, fmt.Sprintf("server {\n    listen %s;\n    location / { proxy_pass %s; }\n}\n", addr, srv.URL), addr)
	ctx, cancel := context.WithTimeout(context.Background(), pushdtest.Timeout)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, "ws://"+addr+pushdtest.RoomPath("lobby"), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("WebSocket through a minimal nginx: %v %v; want 400", resp, err)
	}
	a := srv.Via(t, "http://"+addr).Get(t, pushdtest.RoomPath("lobby"), "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version", "13", "Upgrade", "websocket", "Connection", "Upgrade")
	if a.Status != http.StatusBadRequest || !strings.Contains(a.Error(t).Message, "proxy_http_version 1.1") {
		t.Fatalf("handshake through a minimal nginx: %d %s; want 400 naming proxy_http_version 1.1", a.Status, a.Body)
	}
}

// pushd behind Caddy, configured as README says, works over every
// transport.
func TestCaddyAsDocumented(t *testing.T) {
	srv := startPushd(t)
	addr := pushdtest.FreeAddr(t)
	site := readmeSite(t, "### Behind Caddy", "caddyfile",
		"chat.example.com {", "http://"+addr+" {",
		"reverse_proxy 127.0.0.1:8080", "reverse_proxy "+strings.TrimPrefix(srv.URL, "http://"))
	startCaddy(t, site, addr)
	checkThrough(t, srv, "http://"+addr, time.Second)
}
