package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

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
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	subscribe := func(base, user string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/rooms/r/events?user="+user, nil)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("subscribe as %s: %d", user, resp.StatusCode)
		}
	}
	waitPresent := func(base string, want ...string) {
		t.Helper()
		testwait.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
			var got protocol.Presence
			getJSON(t, base+"/v1/rooms/r/presence", &got)
			if !slices.Equal(got.Users, want) {
				return fmt.Errorf("present: %q; want %q", got.Users, want)
			}
			return nil
		})
	}
	subscribe(p.url, "alice")
	subscribe(p.url, "bob")
	waitPresent(p.url, "alice", "bob")
	p.kill(t)

	p = startPushd(t, "--data", data, "--presence-grace", "1s")
	waitPresent(p.url, "alice", "bob") // within the grace period
	subscribe(p.url, "alice")
	waitPresent(p.url, "alice") // bob's grace is over

	logins, logouts := map[string]int{}, map[string]int{}
	for _, ev := range poll(t, p.url+"/v1/rooms/r/events?since=0&wait=0").Events {
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
