package main

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pushd/push/internal/natstest"
)

// A clean shutdown of a server on NATS says nothing about a lost NATS
// connection, and nothing at all after "stopped" but what closing the
// connection quietly leaves: no warning or error.
func TestNATSShutdownIsQuiet(t *testing.T) {
	ns := natstest.Start(t)
	p := startPushd(t, "--nats", ns.URL())
	publish(t, p.url, "lobby", "hi")
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("pushd did not exit after SIGTERM")
	}
	if p.err != nil {
		t.Fatalf("pushd exited with %v; want 0", p.err)
	}
	p.mu.Lock()
	log := p.log.String()
	p.mu.Unlock()
	i := strings.Index(log, `msg=stopped`)
	if i < 0 {
		t.Fatalf("no \"stopped\" in the log:\n%s", log)
	}
	if strings.Contains(log, "lost NATS connection") {
		t.Errorf("a clean shutdown logged a lost NATS connection:\n%s", log)
	}
	for _, line := range strings.Split(strings.TrimSpace(log[i:]), "\n")[1:] {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			t.Errorf("after \"stopped\": %s", line)
		}
	}
}
