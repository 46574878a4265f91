package client_test

import (
	"slices"
	"testing"
	"time"

	"github.com/pushd/push/client"
	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/server"
)

// A subscription reports each change of its connection's state, in order,
// to OnState and on States: connecting, connected, reconnecting after a
// drop (with the attempt, the wait and the error), connected again, and
// closed without an error after Close.
func TestStatesAreReported(t *testing.T) {
	s := startPushd(t)
	c := newClient(t, s, "alice")
	var states record[client.StateChange]
	sub := c.Subscribe(t.Context(), client.Room("lobby"), client.SubscribeOptions{
		Transport: client.TransportWebSocket, OnState: states.add,
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 400 * time.Millisecond,
	})
	defer sub.Close()
	waitState(t, sub, connectedWith(client.TransportWebSocket))
	s.DropConns()
	rec := waitState(t, sub, func(sc client.StateChange) bool { return sc.State == client.StateReconnecting })
	if rec.Attempt != 1 || rec.RetryIn < 0 || rec.RetryIn > 400*time.Millisecond || rec.Err == nil || rec.Transport != client.TransportWebSocket {
		t.Fatalf("reconnecting state %+v: want attempt 1, a wait within the bounds, the error, ws", rec)
	}
	waitState(t, sub, connectedWith(client.TransportWebSocket))
	sub.Close()
	if err := sub.Err(); err != nil {
		t.Fatalf("Err() after Close = %v, want nil", err)
	}

	all := states.all()
	var kinds []client.ConnState
	for _, sc := range all {
		kinds = append(kinds, sc.State)
	}
	want := []client.ConnState{client.StateConnecting, client.StateConnected, client.StateReconnecting, client.StateConnecting, client.StateConnected, client.StateClosed}
	if !slices.Equal(kinds, want) {
		t.Fatalf("states %v, want %v", kinds, want)
	}
	if last := all[len(all)-1]; last.Err != nil {
		t.Fatalf("closed state carries %v, want nil after Close", last.Err)
	}
	// The States channel got the same changes and is closed.
	var fromChan []client.ConnState
	for sc := range sub.States() {
		fromChan = append(fromChan, sc.State)
	}
	if len(fromChan) == 0 || fromChan[len(fromChan)-1] != client.StateClosed {
		t.Fatalf("States() gave %v, want it to end with closed", fromChan)
	}
}

// TestConnectedReportedOnAQuietStream: every transport reports connected
// once the server accepts the subscription, even when no event comes (a
// long poll answers only at an event or when its wait runs out, here a
// minute).
func TestConnectedReportedOnAQuietStream(t *testing.T) {
	for _, tc := range transportCases() {
		t.Run(tc.name, func(t *testing.T) {
			s := pushdtest.Start(t, server.Config{LongPollWait: time.Minute})
			c := newClient(t, s, "alice")
			opts := tc.opts
			opts.LongPollWait = time.Minute // past waitTimeout
			sub := subscribe(t, c, client.Room("quiet"), opts)
			waitState(t, sub, connectedWith(tc.want))
			// Events come all the same, not a poll late.
			want := publish(t, c, "quiet", "after connecting")
			sameEvent(t, recv(t, sub), *want)
		})
	}
}
