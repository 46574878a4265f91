package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server"
)

// shortToken mints a token for user that expires within two seconds, and
// returns it with its expiry.
func shortToken(t *testing.T, user string) (string, time.Time) {
	t.Helper()
	tok, err := server.MintToken(authSecret, user, server.Claims{Rooms: []string{"*"}, Publish: true}, 1500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	var c jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(tok, &c); err != nil {
		t.Fatal(err)
	}
	return tok, c.ExpiresAt.Time
}

// A live subscription ends within a second of its token's expiry, with a
// close that says so, and nothing of the stream is lost: the events
// published before the end came first. The same token is then refused.
func TestSubscriptionsEndWhenTheTokenExpires(t *testing.T) {
	srv := pushdtest.Start(t, server.Config{AuthSecret: authSecret, Heartbeat: time.Hour})
	pub := mint(t, "pub", server.Claims{Rooms: []string{"*"}, Publish: true})
	for _, kind := range []string{pushdtest.WS, pushdtest.WSBatch, pushdtest.SSE} {
		t.Run(kind, func(t *testing.T) {
			room := "expiry-" + kind
			tok, exp := shortToken(t, "ann")
			sub := srv.Subscribe(t, kind, pushdtest.RoomPath(room)+"?since=0&token="+tok, pushdtest.SubOptions{})
			if a := srv.Post(t, "/v1/rooms/"+room+"/messages", `{"text":"before"}`, bearer(pub)...); a.Status != http.StatusCreated {
				t.Fatalf("publish: %d %s", a.Status, a.Body)
			}
			if ev := sub.Next(t); ev.Text != "before" {
				t.Fatalf("first event %s; want the message", pushdtest.OneLine(ev))
			}
			ctx, cancel := context.WithTimeout(context.Background(), pushdtest.Timeout)
			defer cancel()
			_, err := sub.Read(ctx)
			ended := time.Now()
			want := "sse close " + protocol.CloseTokenExpired
			if kind != pushdtest.SSE {
				want = fmt.Sprintf("ws close %d %s", protocol.CloseCodeTokenExpired, protocol.CloseTokenExpired)
			}
			if err == nil || err.Error() != (&pushdtest.Ended{How: want}).Error() {
				t.Fatalf("after the token's expiry: %v; want the stream to end with %q", err, want)
			}
			if late := ended.Sub(exp); late < 0 || late > time.Second {
				t.Fatalf("ended %s after the expiry; want within a second, not before", late)
			}
			a := srv.Get(t, pushdtest.RoomPath(room)+"?wait=0&since=0", bearer(tok)...)
			if a.Status != http.StatusUnauthorized || !strings.Contains(a.Error(t).Message, "expired") {
				t.Fatalf("the expired token again: %d %s; want 401 saying it expired", a.Status, a.Body)
			}
		})
	}
}

// A long poll answers by its token's expiry at the latest.
func TestLongPollAnswersByTheTokenExpiry(t *testing.T) {
	srv := pushdtest.Start(t, server.Config{AuthSecret: authSecret, LongPollWait: time.Minute})
	tok, exp := shortToken(t, "ann")
	a := srv.Get(t, pushdtest.RoomPath("lobby")+"?since=0&wait=1m", bearer(tok)...)
	answered := time.Now()
	if a.Status != http.StatusOK {
		t.Fatalf("long poll: %d %s", a.Status, a.Body)
	}
	if late := answered.Sub(exp); late > time.Second || late < -100*time.Millisecond {
		t.Fatalf("answered %s after the token's expiry; want at it", late)
	}
}
