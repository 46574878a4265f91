package natsstore

// Tests in the package's own namespace: the NATS versions it accepts, and
// readiness on a NATS cluster that loses a server. Tests of several pushd
// servers on one NATS are in package natsstore_test, with its cluster
// helpers.

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/pushd/push/internal/natstest"
	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/server"
)

func TestCheckVersion(t *testing.T) {
	for v, ok := range map[string]bool{"2.15.2": true, "2.11.0": true, "v2.12.1": true, "3.0.0": true, "2.10.24": false, "2.9.10": false, "1.4.1": false, "": false, "beta": false} {
		if err := checkVersion(v); (err == nil) != ok {
			t.Errorf("checkVersion(%q) = %v, want ok %v", v, err, ok)
		}
	}
}

// On a three-server NATS cluster that loses the server leading a room's
// stream (cut off at once, as a crash is, without handing its leaderships
// over), publishes to the room fail until JetStream elects another leader.
// After each publish that failed /readyz answers 503 (the failure may come
// when the room's stream is opened, before any append), and it answers
// 200 again only once a publish succeeds. (At the very start of the
// outage a check may still pass an instant before a publish fails: each
// stream elects its new leader on its own.)
func TestReadyzFollowsPublishesWhenANATSServerIsLost(t *testing.T) {
	nc := natstest.StartCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := Open(ctx, Options{URL: nc.URL(), Replicas: 3, Timeout: 2 * time.Second, Prefix: "ready"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv := pushdtest.Start(t, server.Config{Store: st}, pushdtest.LogLevel(0))
	readyz := func() int { return srv.Get(t, "/readyz").Status }
	publish := func(room string) int {
		return srv.Post(t, "/v1/rooms/"+room+"/messages", `{"user":"ann","text":"hi"}`).Status
	}
	if got := readyz(); got != http.StatusOK {
		t.Fatalf("readyz of a whole cluster: %d", got)
	}
	// A room whose stream has the readiness probe's leader: losing that
	// server stops both.
	probeLeader := nc.StreamLeader(st.streamName("pushd-readyz"))
	room := ""
	for i := 0; room == "" && i < 60; i++ {
		r := fmt.Sprint("room", i)
		if got := publish(r); got != http.StatusCreated {
			t.Fatalf("publish to %s: %d", r, got)
		}
		if nc.StreamLeader(st.streamName("room/"+r)) == probeLeader {
			room = r
		}
	}
	if probeLeader < 0 || room == "" {
		t.Fatalf("no room led by the probe stream's leader %d", probeLeader)
	}
	nc.Isolate(probeLeader)
	t.Logf("isolated NATS server %d, leader of the readiness stream and of %s", probeLeader+1, room)

	failed := 0
	testwait.Until(t, time.Minute, 0, func() error {
		pub := publish(room)
		ready := readyz()
		switch {
		case pub != http.StatusCreated && ready != http.StatusServiceUnavailable:
			t.Fatalf("a publish failed with %d, and readyz then said %d; want 503", pub, ready)
		case pub != http.StatusCreated:
			failed++
			return fmt.Errorf("publishes fail (%d) and readyz says %d", pub, ready)
		case ready != http.StatusOK:
			return fmt.Errorf("a publish succeeded; readyz says %d", ready)
		}
		return nil
	})
	if failed == 0 {
		t.Fatal("no publish failed after the loss of the stream's leader; the test did not test anything")
	}
	t.Logf("%d publishes failed before JetStream recovered; readyz said 503 after each", failed)
}
