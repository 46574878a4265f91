package pushdtest

import (
	"testing"
	"time"

	"github.com/pushd/push/server"
)

// Token returns a token of user with claims, signed with secret and valid
// for ttl, as pushd token mints them; a secret too short fails the test.
func Token(t testing.TB, secret []byte, user string, claims server.Claims, ttl time.Duration) string {
	t.Helper()
	tok, err := server.MintToken(secret, user, claims, ttl)
	if err != nil {
		t.Fatalf("mint a token for %s: %v", user, err)
	}
	return tok
}
