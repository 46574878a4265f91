package client_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/pushd/push/client"
	"github.com/pushd/push/internal/pushdtest"
)

func TestNewChecksTheURLAndOptions(t *testing.T) {
	for _, bad := range []string{"", "127.0.0.1:8080", "ftp://host", "http://", "http://[::1", "http://127.0.0.1:99999", "http://127.0.0.1:0", "http://host:x"} {
		if _, err := client.New(bad); err == nil {
			t.Errorf("New(%q) succeeded", bad)
		}
	}
	if _, err := client.New("http://127.0.0.1:1", client.WithHTTPClient(&http.Client{Timeout: time.Second})); err == nil {
		t.Error("New accepted an *http.Client with a Timeout")
	}
	c, err := client.New("ws://127.0.0.1:1/push/?x=1#f", client.WithUser("alice"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.BaseURL(); got != "http://127.0.0.1:1/push" {
		t.Errorf("BaseURL() = %q", got)
	}
	if c.User() != "alice" {
		t.Errorf("User() = %q", c.User())
	}
}

func TestPresence(t *testing.T) {
	s := startPushd(t)
	c := newClient(t, s, "alice")
	ctx := t.Context()
	users, err := c.Presence(ctx, "lobby")
	if err != nil || users == nil || len(users) != 0 {
		t.Fatalf("Presence of an empty room = %q, %v; want an empty list", users, err)
	}
	for _, u := range []string{"zed", "bob"} {
		subscribe(t, c, client.Room("lobby"), client.SubscribeOptions{User: u})
	}
	waitFor(t, func() error {
		if users, err = c.Presence(ctx, "lobby"); err != nil || !slices.Equal(users, []string{"bob", "zed"}) {
			return fmt.Errorf("present: %q, %v; want bob and zed", users, err)
		}
		return nil
	})
}

func TestBaseURLWithPathPrefix(t *testing.T) {
	s := startPushd(t, pushdtest.Wrap(func(next http.Handler) http.Handler {
		return http.StripPrefix("/push", next)
	}))
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	c, err := client.New(s.URL+"/push/", client.WithUser("alice"), client.WithHTTPClient(&http.Client{Transport: tr}))
	if err != nil {
		t.Fatal(err)
	}
	sub := subscribe(t, c, client.Room("lobby"), client.SubscribeOptions{})
	waitState(t, sub, connectedWith(client.TransportWebSocket))
	want, err := c.Publish(t.Context(), "lobby", "behind a prefix")
	if err != nil {
		t.Fatal(err)
	}
	sameEvent(t, recv(t, sub), *want)
}

func TestStreams(t *testing.T) {
	cases := []struct {
		s          client.Stream
		name, text string
	}{
		{client.Room("lobby"), "room/lobby", "room lobby"},
		{client.Tasks(), "tasks", "tasks"},
		{client.Task("t1"), "tasks", "task t1"},
	}
	for _, tc := range cases {
		if tc.s.Name() != tc.name || tc.s.String() != tc.text {
			t.Errorf("%v: Name %q String %q", tc.s, tc.s.Name(), tc.s.String())
		}
	}
	c, err := client.New("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	sub := c.Subscribe(t.Context(), client.Stream{}, client.SubscribeOptions{})
	<-sub.Done()
	if sub.Err() == nil {
		t.Fatal("a zero Stream was accepted")
	}
}
