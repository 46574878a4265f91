package main

import (
	"strings"
	"syscall"
	"testing"

	"github.com/pushd/push/internal/natstest"
)

// A clean shutdown of a server on NATS says nothing about a lost NATS
// connection, and nothing at all after "stopped" but what closing the
// connection quietly leaves: no warning or error.
func TestNATSShutdownIsQuiet(t *testing.T) {
	ns := natstest.Start(t)
	p := startPushd(t, "--nats", ns.URL())
	p.Publish(t, "lobby", "tester", "hi")
	p.Signal(t, syscall.SIGTERM)
	if err := p.Wait(t); err != nil {
		t.Fatalf("pushd exited with %v; want 0", err)
	}
	log := p.Log()
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
