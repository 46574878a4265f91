package main

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
)

// Who was present survives a crash: after the restart they have the grace
// period to come back. One who does stays logged in (no second login); one
// who does not is logged out, so the room's log has a logout for every
// login.
func TestPresenceSurvivesACrash(t *testing.T) {
	data := t.TempDir()
	p := startPushd(t, "--data", data, "--presence-grace", "1s")
	subscribe := func(user string) {
		t.Helper()
		p.Subscribe(t, pushdtest.SSE, pushdtest.RoomPath("r"), pushdtest.SubOptions{User: user})
	}
	waitPresent := func(want ...string) {
		t.Helper()
		testwait.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
			if got := p.Presence(t, "r"); !slices.Equal(got, want) {
				return fmt.Errorf("present: %q; want %q", got, want)
			}
			return nil
		})
	}
	subscribe("alice")
	subscribe("bob")
	waitPresent("alice", "bob")
	p.Kill(t)

	p = startPushd(t, "--data", data, "--presence-grace", "1s")
	waitPresent("alice", "bob") // within the grace period
	subscribe("alice")
	waitPresent("alice") // bob's grace is over

	logins, logouts := map[string]int{}, map[string]int{}
	for _, ev := range p.History(t, pushdtest.RoomPath("r")) {
		switch ev.Type {
		case protocol.TypeLogin:
			logins[ev.User]++
		case protocol.TypeLogout:
			logouts[ev.User]++
		}
	}
	if logins["alice"] != 1 || logouts["alice"] != 0 || logins["bob"] != 1 || logouts["bob"] != 1 {
		t.Fatalf("room log: logins %v, logouts %v; want alice logged in once and still there, bob in and out once", logins, logouts)
	}
}
