package pushdtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// IdP is an identity provider for tests: it publishes a JWK Set on
// 127.0.0.1 and signs tokens with the keys in it, one for each of RS256,
// ES256 and EdDSA. Rotate replaces the keys, as a provider does.
type IdP struct {
	// URL is where the JWK Set is served.
	URL string
	// Issuer is the iss of the tokens Sign makes unless told otherwise.
	Issuer string

	fetches atomic.Int64
	mu      sync.Mutex
	gen     int
	keys    map[string]idpKey // by alg
	set     []byte            // the JWK Set JSON
}

type idpKey struct {
	kid    string
	signer crypto.Signer
}

// StartIdP starts an identity provider until the test ends.
func StartIdP(t testing.TB) *IdP {
	t.Helper()
	p := &IdP{Issuer: "https://idp.example"}
	p.Rotate(t)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(p.JWKS())
	}))
	t.Cleanup(hs.Close)
	p.URL = hs.URL + "/jwks.json"
	return p
}

// rsaKeys are RSA keys made once per test binary: making one takes long
// under the race detector.
var rsaKeys = sync.OnceValues(func() ([]*rsa.PrivateKey, error) {
	keys := make([]*rsa.PrivateKey, 3)
	for i := range keys {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		keys[i] = k
	}
	return keys, nil
})

// Rotate replaces every key with a new one of a new kid; the set served
// from now on lists only the new keys.
func (p *IdP) Rotate(t testing.TB) {
	t.Helper()
	rsas, err := rsaKeys()
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gen++
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p.keys = map[string]idpKey{
		"RS256": {fmt.Sprintf("rsa-%d", p.gen), rsas[p.gen%len(rsas)]},
		"ES256": {fmt.Sprintf("ec-%d", p.gen), ec},
		"EdDSA": {fmt.Sprintf("ed-%d", p.gen), ed},
	}
	var set jwkset.JWKSMarshal
	for alg, k := range p.keys {
		jwk, err := jwkset.NewJWKFromKey(k.signer.Public(), jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: k.kid, ALG: jwkset.ALG(alg), USE: jwkset.UseSig}})
		if err != nil {
			t.Fatal(err)
		}
		set.Keys = append(set.Keys, jwk.Marshal())
	}
	if p.set, err = json.Marshal(set); err != nil {
		t.Fatal(err)
	}
}

// JWKS returns the JWK Set as served now.
func (p *IdP) JWKS() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.set
}

// WriteJWKS writes the JWK Set as it is now to file.
func (p *IdP) WriteJWKS(t testing.TB, file string) {
	t.Helper()
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, p.JWKS(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
}

// Fetches returns how many times the JWK Set was fetched.
func (p *IdP) Fetches() int { return int(p.fetches.Load()) }

// Kid returns the kid of the current key for alg.
func (p *IdP) Kid(alg string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keys[alg].kid
}

// Sign returns a token signed with the current key for alg ("RS256",
// "ES256" or "EdDSA") with claims, to which it adds iss (the IdP's Issuer)
// and exp (an hour from now) unless claims has them. A "kid" in claims is
// put in the header instead, to sign as another key would be named.
func (p *IdP) Sign(t testing.TB, alg string, claims jwt.MapClaims) string {
	t.Helper()
	p.mu.Lock()
	k, ok := p.keys[alg]
	p.mu.Unlock()
	if !ok {
		t.Fatalf("IdP has no %s key", alg)
	}
	c := jwt.MapClaims{"iss": p.Issuer, "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()}
	kid := k.kid
	for name, v := range claims {
		if name == "kid" {
			kid = v.(string)
			continue
		}
		c[name] = v
	}
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(alg), c)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(k.signer)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
