package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testwait"
)

// startPushdWithFiles starts pushd serve with an open-file limit of files
// (soft and hard, set by the shell that execs it, as ulimit -n would).
func startPushdWithFiles(t *testing.T, files int, args ...string) *pushdtest.Process {
	t.Helper()
	cmd := pushdtest.ProgramCommand(context.Background(), append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Args = append([]string{"sh", "-c", `ulimit -n ` + strconv.Itoa(files) + ` && exec "$0" "$@"`, cmd.Path}, cmd.Args[1:]...)
	cmd.Path = sh
	return pushdtest.StartProcess(t, cmd)
}

func TestServeLogsTheOpenFileLimit(t *testing.T) {
	p := startPushdWithFiles(t, 200, "--store", "memory", "--max-conns-per-ip", "512")
	p.WaitLog(t, `msg="open-file limit: each subscriber is one open file" soft=200 hard=200 connections=136`)
	p.WaitLog(t, `msg="--max-conns-per-ip is more than the open-file limit leaves room for`)
}

func TestOutOfFilesIsLoggedOnceAndSubscribersKeepWorking(t *testing.T) {
	p := startPushdWithFiles(t, 48, "--store", "memory", "--max-conns-per-ip", "0", "--publish-rate", "0",
		"--read-header-timeout", "1h")
	sub := p.Subscribe(t, pushdtest.WS, "/v1/rooms/lobby/events", pushdtest.SubOptions{})
	p.Publish(t, "lobby", "alice", "before") // leaves a keep-alive connection to post on
	if ev := sub.Next(t); ev.Text != "before" {
		t.Fatalf("got %q, want before", ev.Text)
	}

	// Connect until the server cannot take more: the kernel completes the
	// connections, the server runs out of files accepting them.
	addr := strings.TrimPrefix(p.URL, "http://")
	var flood []net.Conn
	t.Cleanup(func() {
		for _, c := range flood {
			_ = c.Close()
		}
	})
	for range 80 {
		c, err := net.DialTimeout("tcp", addr, pushdtest.Timeout)
		if err != nil {
			break // the backlog is full too
		}
		flood = append(flood, c)
	}
	p.WaitLog(t, "out of open files")
	refused := regexp.MustCompile(`(?m)^pushd_accept_errors_total (\d+)`)
	testwait.Until(t, pushdtest.Timeout, 10*time.Millisecond, func() error {
		m := refused.FindStringSubmatch(string(p.Get(t, "/metrics").Body))
		if m == nil {
			return fmt.Errorf("no pushd_accept_errors_total in /metrics")
		}
		if n, _ := strconv.Atoi(m[1]); n < 3 {
			return fmt.Errorf("pushd_accept_errors_total is %d, want 3 or more (the server tries again)", n)
		}
		return nil
	})
	p.Publish(t, "lobby", "alice", "during")
	if ev := sub.Next(t); ev.Text != "during" {
		t.Fatalf("got %q, want during", ev.Text)
	}
	if n := strings.Count(p.Log(), "out of open files"); n != 1 {
		t.Fatalf("logged running out of files %d times, want once:\n%s", n, p.Log())
	}

	for _, c := range flood {
		_ = c.Close()
	}
	flood = nil
	p.WaitLog(t, "accepting connections again after running out of open files")
	// A new connection is accepted again.
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: pushdtest.Timeout}
	resp, err := fresh.Post(p.URL+"/v1/rooms/lobby/messages", "application/json", strings.NewReader(`{"user":"bob","text":"after"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("publish on a new connection: %s", resp.Status)
	}
	if ev := sub.Next(t); ev.Text != "after" {
		t.Fatalf("got %q, want after", ev.Text)
	}
}
