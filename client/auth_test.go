package client_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushd/push/client"
	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// shortTokens is a token source whose tokens for user last ttl; it counts
// the tokens it gave.
type shortTokens struct {
	user  string
	ttl   time.Duration
	given atomic.Int64
}

func (s *shortTokens) token(context.Context) (string, error) {
	s.given.Add(1)
	return server.MintToken(tokenSecret, s.user, server.Claims{Rooms: []string{"*"}, Publish: true}, s.ttl)
}

// A subscription whose token expires takes a new one from its token source
// and resumes from its cursor: every event arrives once and in order, and
// the subscription never ends.
func TestTokenSourceRenewsExpiredSubscriptions(t *testing.T) {
	srv := startAuthPushd(t)
	for _, tr := range []client.Transport{client.TransportWebSocket, client.TransportSSE, client.TransportLongPoll} {
		t.Run(string(tr), func(t *testing.T) {
			room := "renew-" + string(tr)
			src := &shortTokens{user: "ann", ttl: 1100 * time.Millisecond}
			c, err := client.New(srv.URL, client.WithTokenSource(src.token), client.WithHTTPClient(srv.Client))
			if err != nil {
				t.Fatal(err)
			}
			var closed atomic.Bool
			sub := c.Subscribe(t.Context(), client.Room(room), client.SubscribeOptions{
				Transport: tr, Since: "0", LongPollWait: 5 * time.Second,
				OnState: func(sc client.StateChange) { closed.Store(closed.Load() || sc.State == client.StateClosed) },
			})
			defer sub.Close()
			pub, err := client.New(srv.URL, client.WithTokenSource((&shortTokens{user: "pub", ttl: time.Hour}).token), client.WithHTTPClient(srv.Client))
			if err != nil {
				t.Fatal(err)
			}
			// Publish before, between and after two expiries of the
			// subscriber's token.
			const n = 12
			for i := range n {
				if i > 0 && i%4 == 0 {
					renewals := int64(i / 4)
					waitFor(t, func() error {
						if got := src.given.Load(); got <= renewals {
							return fmt.Errorf("%d tokens given; waiting for renewal %d", got, renewals)
						}
						return nil
					})
				}
				if _, err := pub.Publish(t.Context(), room, fmt.Sprint("m", i)); err != nil {
					t.Fatal(err)
				}
			}
			for i := range n {
				select {
				case ev := <-sub.Events():
					if ev.Type != protocol.TypeMessage || ev.Text != fmt.Sprint("m", i) || ev.Seq != uint64(i+1) {
						t.Fatalf("event %d: %+v; want m%d at seq %d", i, ev, i, i+1)
					}
				case <-time.After(pushdtest.Timeout):
					t.Fatalf("event %d did not come (err %v)", i, sub.Err())
				}
			}
			if got := src.given.Load(); got < 3 {
				t.Fatalf("the token source gave %d tokens; want a new one at each of two expiries", got)
			}
			if closed.Load() || sub.Err() != nil {
				t.Fatalf("the subscription ended: %v", sub.Err())
			}
		})
	}
}

// A call refused for its token (401) is made again with a new one.
func TestTokenSourceRenewsRefusedCalls(t *testing.T) {
	srv := startAuthPushd(t)
	expired := pushdtest.Token(t, tokenSecret, "ann", server.Claims{Rooms: []string{"*"}, Publish: true}, time.Millisecond)
	waitFor(t, func() error {
		if a := srv.Get(t, "/v1/rooms/lobby/presence", "Authorization", "Bearer "+expired); a.Status != http.StatusUnauthorized {
			return fmt.Errorf("token still valid: %d", a.Status)
		}
		return nil
	})
	src := &shortTokens{user: "ann", ttl: time.Hour}
	c, err := client.New(srv.URL, client.WithToken(expired), client.WithTokenSource(src.token), client.WithHTTPClient(srv.Client))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := c.Publish(t.Context(), "lobby", "hi")
	if err != nil || ev.User != "ann" {
		t.Fatalf("publish with an expired first token: %v %+v; want it renewed and stored", err, ev)
	}
	if got := src.given.Load(); got != 1 {
		t.Fatalf("the token source gave %d tokens; want 1", got)
	}

	// A source that gives only refused tokens ends a subscription with the
	// refusal, after one renewal, not in a loop.
	bad := func(context.Context) (string, error) { return expired, nil }
	c, err = client.New(srv.URL, client.WithTokenSource(bad), client.WithHTTPClient(srv.Client))
	if err != nil {
		t.Fatal(err)
	}
	sub := c.Subscribe(t.Context(), client.Room("lobby"), client.SubscribeOptions{Transport: client.TransportSSE})
	select {
	case <-sub.Done():
	case <-time.After(pushdtest.Timeout):
		t.Fatal("a subscription whose tokens are all refused did not end")
	}
	var pe *protocol.Error
	if !errors.As(sub.Err(), &pe) || pe.Status != http.StatusUnauthorized {
		t.Fatalf("ended with %v; want the 401", sub.Err())
	}
}

func TestTokenUser(t *testing.T) {
	tok := token(t, "alice", server.Claims{Rooms: []string{"lobby"}, Publish: true})
	if user, err := client.TokenUser(tok); err != nil || user != "alice" {
		t.Fatalf("TokenUser = %q, %v; want alice", user, err)
	}
	if user, err := client.TokenUser(" " + tok + "\n"); err != nil || user != "alice" {
		t.Fatalf("TokenUser with spaces around = %q, %v; want alice", user, err)
	}
	// Read, not verified: a token signed with another secret names its
	// user all the same (the server is the one to refuse it).
	other := pushdtest.Token(t, []byte("another-secret-another-secret!!"), "bob", server.Claims{}, time.Hour)
	if user, err := client.TokenUser(other); err != nil || user != "bob" {
		t.Fatalf("TokenUser of another secret's token = %q, %v; want bob", user, err)
	}
	claims := func(json string) string {
		return "eyJhbGciOiJIUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(json)) + ".c2ln"
	}
	for _, bad := range []string{"", "not-a-token", "a.b", "a.!!!.c", claims(`[1]`), claims(`{"exp":1}`), claims(`{"sub":"a b"}`), claims(`{"sub":7}`)} {
		if user, err := client.TokenUser(bad); err == nil {
			t.Errorf("TokenUser(%q) = %q, want an error", bad, user)
		}
	}
}

func TestTokensAreSent(t *testing.T) {
	s := startAuthPushd(t)
	tok := token(t, "carol", server.Claims{Rooms: []string{"lobby"}, Publish: true, Tasks: true})
	ctx := t.Context()
	_, err := newClient(t, s, "carol").Publish(ctx, "lobby", "no token")
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Code != protocol.CodeUnauthorized {
		t.Fatalf("without a token: %v, want unauthorized", err)
	}
	c := newClient(t, s, "", client.WithToken(tok))
	ev, err := c.Publish(ctx, "lobby", "with a token")
	if err != nil || ev.User != "carol" {
		t.Fatalf("with a token: %+v, %v", ev, err)
	}
	_, err = c.Publish(ctx, "elsewhere", "not allowed")
	if !errors.As(err, &pe) || pe.Code != protocol.CodeForbidden {
		t.Fatalf("to a room the token does not name: %v, want forbidden", err)
	}
	if _, err := c.ListTasks(ctx); err != nil {
		t.Fatalf("ListTasks with a token: %v", err)
	}
}

func TestTokenIsSentOnEveryTransport(t *testing.T) {
	s := startAuthPushd(t)
	tok := token(t, "carol", server.Claims{Rooms: []string{"lobby"}, Publish: true})
	c := newClient(t, s, "", client.WithToken(tok))
	for _, tc := range transportCases() {
		t.Run(tc.name, func(t *testing.T) {
			sub := subscribe(t, c, client.Room("lobby"), tc.opts)
			waitState(t, sub, connectedWith(tc.want))
			want := publish(t, c, "lobby", "with a token")
			got := recv(t, sub)
			sameEvent(t, got, *want)
			if got.User != "carol" {
				t.Fatalf("user %q, want the token's carol", got.User)
			}
		})
	}

	anon := newClient(t, s, "")
	sub := subscribe(t, anon, client.Room("lobby"), client.SubscribeOptions{})
	<-sub.Done()
	var pe *protocol.Error
	if err := sub.Err(); !errors.As(err, &pe) || pe.Code != protocol.CodeUnauthorized {
		t.Fatalf("without a token: Err() = %v, want unauthorized", err)
	}
}
