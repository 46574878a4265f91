package server_test

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/server"
)

// bearer is the header of a request with token.
func bearer(token string) []string { return []string{"Authorization", "Bearer " + token} }

// status returns the status of a GET of path with token, and the error
// message when it is one.
func status(t *testing.T, srv *pushdtest.Server, path, token string) (int, string) {
	t.Helper()
	a := srv.Get(t, path, bearer(token)...)
	if a.Status >= 400 {
		return a.Status, a.Error(t).Message
	}
	return a.Status, ""
}

// A provider's RS256, ES256 and EdDSA tokens are taken by kid, with its
// own claim names, issuer and audience; HS256 tokens of the secret still
// work beside them.
func TestIdentityProviderTokens(t *testing.T) {
	idp := pushdtest.StartIdP(t)
	srv := pushdtest.Start(t, server.Config{AuthSecret: authSecret, IdentityProvider: server.IdentityProvider{
		JWKS: idp.URL, Issuer: idp.Issuer, Audience: "pushd",
		Claims: server.ClaimNames{User: "preferred_username", Rooms: "pushd.rooms", Publish: "roles=chat-writer", Tasks: "roles=task-runner"},
	}})
	claims := func(user string, roles ...string) jwt.MapClaims {
		return jwt.MapClaims{"sub": "f81d4fae-7dec", "preferred_username": user, "aud": []string{"account", "pushd"},
			"pushd": map[string]any{"rooms": "lobby dev-*"}, "roles": roles}
	}
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			writer := idp.Sign(t, alg, claims("ann", "chat-writer"))
			reader := idp.Sign(t, alg, claims("rita"))
			if st, msg := status(t, srv, "/v1/rooms/dev-ops/presence", writer); st != http.StatusOK {
				t.Fatalf("presence with a %s token: %d %s", alg, st, msg)
			}
			if st, _ := status(t, srv, "/v1/rooms/secret/presence", writer); st != http.StatusForbidden {
				t.Fatalf("a room the token does not list: %d; want 403", st)
			}
			a := srv.Post(t, "/v1/rooms/lobby/messages", `{"text":"hi"}`, bearer(writer)...)
			if a.Status != http.StatusCreated || !strings.Contains(string(a.Body), `"user":"ann"`) {
				t.Fatalf("publish as the writer: %d %s; want 201 as ann", a.Status, a.Body)
			}
			if a := srv.Post(t, "/v1/rooms/lobby/messages", `{"text":"hi"}`, bearer(reader)...); a.Status != http.StatusForbidden {
				t.Fatalf("publish without the role: %d %s; want 403", a.Status, a.Body)
			}
			if a := srv.Post(t, "/v1/tasks", `{"kind":"demo","total":1,"interval":"1ms"}`, bearer(writer)...); a.Status != http.StatusForbidden {
				t.Fatalf("start a task without the role: %d %s; want 403", a.Status, a.Body)
			}
		})
	}
	// The secret's tokens keep pushd's own claims.
	if st, msg := status(t, srv, "/v1/rooms/lobby/presence", mint(t, "alice", server.Claims{Rooms: []string{"lobby"}})); st != http.StatusOK {
		t.Fatalf("an HS256 token beside the provider: %d %s", st, msg)
	}
	for _, tc := range []struct {
		name  string
		token string
		want  string
	}{
		{"other issuer", idp.Sign(t, "RS256", merge(claims("ann"), jwt.MapClaims{"iss": "https://evil.example"})), "issuer"},
		{"other audience", idp.Sign(t, "ES256", merge(claims("ann"), jwt.MapClaims{"aud": "another-app"})), "audience"},
		{"expired", idp.Sign(t, "EdDSA", merge(claims("ann"), jwt.MapClaims{"exp": time.Now().Add(-time.Second).Unix()})), "expired"},
		{"no user", idp.Sign(t, "RS256", merge(claims(""), jwt.MapClaims{"preferred_username": nil})), "preferred_username"},
		{"unknown kid", idp.Sign(t, "RS256", merge(claims("ann"), jwt.MapClaims{"kid": "nobody"})), `kid "nobody"`},
		{"kid of another key", idp.Sign(t, "ES256", merge(claims("ann"), jwt.MapClaims{"kid": idp.Kid("RS256")})), "not signed"},
	} {
		st, msg := status(t, srv, "/v1/rooms/lobby/presence", tc.token)
		if st != http.StatusUnauthorized || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: %d %q; want 401 saying %q", tc.name, st, msg, tc.want)
		}
	}
}

// merge returns a copy of a with b's claims over it.
func merge(a, b jwt.MapClaims) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// When the provider rotates its keys, a token of a new key is taken at
// once (the unknown kid fetches the set again), a token of a key it
// dropped is refused from the next fetch on, and unknown kids do not make
// the server fetch more than once per UnknownKeyRefresh.
func TestIdentityProviderKeyRotation(t *testing.T) {
	idp := pushdtest.StartIdP(t)
	srv := pushdtest.Start(t, server.Config{IdentityProvider: server.IdentityProvider{
		JWKS: idp.URL, Refresh: time.Hour, UnknownKeyRefresh: time.Hour,
	}})
	user := jwt.MapClaims{"sub": "ann", "rooms": []string{"lobby"}}
	old := idp.Sign(t, "RS256", user)
	if st, msg := status(t, srv, "/v1/rooms/lobby/presence", old); st != http.StatusOK {
		t.Fatalf("before the rotation: %d %s", st, msg)
	}
	fetched := idp.Fetches()
	idp.Rotate(t)
	for _, alg := range []string{"ES256", "EdDSA", "RS256"} {
		if st, msg := status(t, srv, "/v1/rooms/lobby/presence", idp.Sign(t, alg, user)); st != http.StatusOK {
			t.Fatalf("a %s token of the new key: %d %s", alg, st, msg)
		}
	}
	if got := idp.Fetches() - fetched; got != 1 {
		t.Fatalf("the set was fetched %d times for the rotation; want once", got)
	}
	if st, _ := status(t, srv, "/v1/rooms/lobby/presence", old); st != http.StatusUnauthorized {
		t.Fatalf("a token of the dropped key: %d; want 401", st)
	}
	for i := range 5 {
		tok := idp.Sign(t, "RS256", merge(user, jwt.MapClaims{"kid": fmt.Sprint("unknown-", i)}))
		if st, _ := status(t, srv, "/v1/rooms/lobby/presence", tok); st != http.StatusUnauthorized {
			t.Fatalf("unknown kid: %d; want 401", st)
		}
	}
	if got := idp.Fetches() - fetched; got != 1 {
		t.Fatalf("unknown kids fetched the set %d more times within UnknownKeyRefresh; want none", got-1)
	}
}

// The keys may be a file; it is read again on schedule and for an unknown
// kid, so a rotation written to it is taken without a restart.
func TestIdentityProviderKeysFromAFile(t *testing.T) {
	idp := pushdtest.StartIdP(t)
	file := filepath.Join(t.TempDir(), "jwks.json")
	idp.WriteJWKS(t, file)
	srv := pushdtest.Start(t, server.Config{IdentityProvider: server.IdentityProvider{
		JWKS: file, Refresh: 50 * time.Millisecond, UnknownKeyRefresh: time.Hour,
	}})
	user := jwt.MapClaims{"sub": "ann", "rooms": []string{"lobby"}}
	old := idp.Sign(t, "EdDSA", user)
	if st, msg := status(t, srv, "/v1/rooms/lobby/presence", old); st != http.StatusOK {
		t.Fatalf("a token of the file's key: %d %s", st, msg)
	}
	idp.Rotate(t)
	idp.WriteJWKS(t, file)
	// The scheduled read drops the old key.
	testwait.Until(t, pushdtest.Timeout, 10*time.Millisecond, func() error {
		if st, _ := status(t, srv, "/v1/rooms/lobby/presence", old); st != http.StatusUnauthorized {
			return fmt.Errorf("a token of the key the file no longer has: %d; want 401", st)
		}
		return nil
	})
	if st, msg := status(t, srv, "/v1/rooms/lobby/presence", idp.Sign(t, "ES256", user)); st != http.StatusOK {
		t.Fatalf("a token of the file's new key: %d %s", st, msg)
	}
}

func TestIdentityProviderKeysMustBeSafeToFetch(t *testing.T) {
	for _, tc := range []struct{ jwks, want string }{
		{"http://idp.example/jwks.json", "https"},
		{"ftp://idp.example/jwks.json", "https:// URL or a file"},
		{filepath.Join(t.TempDir(), "missing.json"), "no such file"},
	} {
		_, err := server.New(server.Config{IdentityProvider: server.IdentityProvider{JWKS: tc.jwks}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("JWKS %s: New: %v; want an error saying %q", tc.jwks, err, tc.want)
		}
	}
}
