package server_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// tooManySubs fails the test unless a subscription of kind to path was
// refused with 429 rate_limited.
func tooManySubs(t *testing.T, r *pushdtest.Remote, kind, path string, o pushdtest.SubOptions) {
	t.Helper()
	sub, err := r.TrySubscribe(kind, path, o)
	if err == nil {
		sub.Close()
		t.Fatalf("%s %s %+v was let in; want 429", kind, path, o)
	}
	var re *pushdtest.RefusedError
	if !errors.As(err, &re) || re.Status != http.StatusTooManyRequests {
		t.Fatalf("%s %s %+v: %v; want 429", kind, path, o, err)
	}
}

// The per-user limit counts every live subscription of a token's user,
// whether or not the query names the user, on every stream (rooms, the
// tasks stream, one task) and every transport (a waiting long poll too),
// and from any address: behind a proxy, where the per-address limit is
// lifted, it still holds.
func TestConnsPerUserCountsEverySubscriptionOfAToken(t *testing.T) {
	const perUser = 4
	s := authServer(t, server.Config{LongPollWait: 5 * time.Second,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Limits:         server.Limits{ConnsPerUser: perUser}})
	tok := mint(t, "ann", server.Claims{Rooms: []string{"*"}, Publish: true, Tasks: true})
	// Each of ann's clients from an address of its own.
	ann := func(i int) *pushdtest.Remote {
		return s.WithHeader("Authorization", "Bearer "+tok, "X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i))
	}
	task := ann(0).StartTask(t, `{"kind":"external","name":"watched"}`)

	ann(1).Subscribe(t, pushdtest.SSE, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{})
	ann(2).Subscribe(t, pushdtest.WS, pushdtest.RoomPath("dev"), pushdtest.SubOptions{})
	tasksSub := ann(3).Subscribe(t, pushdtest.SSE, pushdtest.TasksPath, pushdtest.SubOptions{})
	poll := ann(4).PollAsync(t, pushdtest.RoomPath("lobby"), "wait=5s")
	s.WaitConnections(t, "longpoll", 1)

	tooManySubs(t, ann(5), pushdtest.WS, pushdtest.TasksPath, pushdtest.SubOptions{})
	tooManySubs(t, ann(6), pushdtest.SSE, pushdtest.TaskPath(task.ID), pushdtest.SubOptions{})
	tooManySubs(t, ann(7), pushdtest.WS, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{User: "ann"})
	a := ann(8).Get(t, pushdtest.RoomPath("lobby")+"?wait=5s")
	a.WantError(t, http.StatusTooManyRequests, protocol.CodeRateLimited)
	if a.Header.Get("Retry-After") == "" {
		t.Fatalf("429 without Retry-After: %v", a.Header)
	}

	// Another user has places of their own.
	bob := s.WithHeader("Authorization", "Bearer "+mint(t, "bob", server.Claims{Rooms: []string{"*"}}))
	bob.Subscribe(t, pushdtest.WS, pushdtest.TasksPath, pushdtest.SubOptions{})

	// An ended subscription frees its place, and so does an answered long poll.
	tasksSub.Close()
	testwait.Until(t, pushdtest.Timeout, 10*time.Millisecond, func() error {
		sub, err := ann(9).TrySubscribe(pushdtest.WS, pushdtest.TasksPath, pushdtest.SubOptions{})
		if err != nil {
			return err
		}
		t.Cleanup(sub.Close)
		return nil
	})
	ann(0).Publish(t, "lobby", "ann", "wakes the long poll")
	testwait.Recv(t, pushdtest.Timeout, poll, "the long poll's answer")
	ann(10).Subscribe(t, pushdtest.SSE, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{})
}

// On a server without tokens the per-user limit counts the name the
// query claims, as well as the address.
func TestConnsPerUserCountsTheClaimedNameOnAnOpenServer(t *testing.T) {
	s := pushdtest.Start(t, server.Config{Limits: server.Limits{ConnsPerUser: 2, ConnsPerIP: 4}})
	s.Subscribe(t, pushdtest.SSE, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{User: "ann"})
	s.Subscribe(t, pushdtest.WS, pushdtest.RoomPath("dev"), pushdtest.SubOptions{User: "ann"})
	tooManySubs(t, s.Remote, pushdtest.SSE, pushdtest.RoomPath("ops"), pushdtest.SubOptions{User: "ann"})
	s.Get(t, pushdtest.RoomPath("ops")+"?user=ann&wait=0").WantError(t, http.StatusTooManyRequests, protocol.CodeRateLimited)
	// Without a name only the address counts.
	s.Subscribe(t, pushdtest.SSE, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{})
	s.Subscribe(t, pushdtest.WS, pushdtest.TasksPath, pushdtest.SubOptions{})
	tooManySubs(t, s.Remote, pushdtest.SSE, pushdtest.RoomPath("lobby"), pushdtest.SubOptions{User: "bob"})
}
