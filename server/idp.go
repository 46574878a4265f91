package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

	"github.com/pushd/push/protocol"
)

// IdentityProvider makes the server take the tokens an identity provider
// (Keycloak, Auth0, Dex, any OpenID Connect provider) signs with its own
// keys, besides the HS256 tokens of Config.AuthSecret. The provider
// publishes its public keys as a JWK Set; a token names its key by kid and
// is signed with RS256 (or RS384, RS512, PS256..PS512), ES256 (ES384,
// ES512) or EdDSA. The set is fetched again on a schedule, and when a
// token names a key not in it (a rotation), at most once per
// UnknownKeyRefresh.
//
// Issuer, Audience and Claims apply to the provider's tokens; HS256 tokens
// keep pushd's own claims (see Claims).
type IdentityProvider struct {
	// JWKS is where the keys are: an https:// URL (http:// only to a
	// loopback address), or a file (a path, or file:///path). Empty: no
	// identity provider.
	JWKS string
	// Issuer, when set, must be the tokens' iss.
	Issuer string
	// Audience, when set, must be among the tokens' aud.
	Audience string
	// Claims says where the provider's tokens carry what pushd's carry in
	// sub, rooms, publish and tasks.
	Claims ClaimNames
	// Refresh is how often the keys are fetched again (default 15 min).
	Refresh time.Duration
	// UnknownKeyRefresh is the least time between two fetches made for a
	// token signed by a key the set does not have (default 10 s); a
	// token that comes sooner is refused.
	UnknownKeyRefresh time.Duration
	// HTTPClient fetches the keys (default: the system's roots, 10 s per
	// fetch).
	HTTPClient *http.Client
}

// ClaimNames are the claims of an identity provider's tokens that say who
// the user is and what they may do. A name is a top-level claim, or a path
// into nested objects with dots ("realm_access.roles") when no top-level
// claim has the whole name. The zero value is pushd's own names.
type ClaimNames struct {
	// User is the claim that names the user (default "sub"); its value
	// must be a valid user name.
	User string
	// Rooms is the claim that lists the rooms (default "rooms"): a list
	// of names or patterns, or one string of them separated by spaces or
	// commas.
	Rooms string
	// Publish, Tasks and Admin grant posting, task changes and the admin
	// right (defaults "publish", "tasks" and "admin"): "claim" grants when
	// the claim is true, and "claim=value" when the claim (a string, a
	// space-separated string or a list) holds value, as in
	// "roles=chat-writer".
	Publish string
	Tasks   string
	Admin   string
}

// withDefaults fills in pushd's own claim names.
func (c ClaimNames) withDefaults() ClaimNames {
	c.User = cmp.Or(c.User, "sub")
	c.Rooms = cmp.Or(c.Rooms, "rooms")
	c.Publish = cmp.Or(c.Publish, "publish")
	c.Tasks = cmp.Or(c.Tasks, "tasks")
	c.Admin = cmp.Or(c.Admin, "admin")
	return c
}

// Defaults of IdentityProvider.
const (
	defaultKeyRefresh        = 15 * time.Minute
	defaultUnknownKeyRefresh = 10 * time.Second
	keyFetchTimeout          = 10 * time.Second
)

// asymmetricMethods are the signing methods taken from an identity
// provider.
var asymmetricMethods = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// tokenVerifier checks the tokens of a server with authentication: HS256
// with the server's secret, and an identity provider's.
type tokenVerifier struct {
	secret  []byte
	idp     IdentityProvider
	keys    keyfunc.Keyfunc // nil without an identity provider
	parser  *jwt.Parser
	idpIss  *jwt.Validator // checks iss and aud of the provider's tokens
	cancel  context.CancelFunc
	methods []string
}

// newTokenVerifier returns the verifier for cfg, nil when the server runs
// open. With an identity provider it fetches the keys once (a file that
// cannot be read is an error; a URL that does not answer is logged, and
// tried again on schedule and for the first token) and keeps them fresh
// until close.
func newTokenVerifier(cfg Config) (*tokenVerifier, error) {
	if len(cfg.AuthSecret) == 0 && cfg.IdentityProvider.JWKS == "" {
		return nil, nil
	}
	v := &tokenVerifier{secret: cfg.AuthSecret, idp: cfg.IdentityProvider, cancel: func() {}}
	if len(v.secret) > 0 {
		v.methods = append(v.methods, jwt.SigningMethodHS256.Alg())
	}
	if v.idp.JWKS != "" {
		if err := v.openKeys(cfg.Logger); err != nil {
			return nil, err
		}
		v.methods = append(v.methods, asymmetricMethods...)
		var opts []jwt.ParserOption
		if v.idp.Issuer != "" {
			opts = append(opts, jwt.WithIssuer(v.idp.Issuer))
		}
		if v.idp.Audience != "" {
			opts = append(opts, jwt.WithAudience(v.idp.Audience))
		}
		v.idpIss = jwt.NewValidator(append(opts, jwt.WithLeeway(tokenLeeway))...)
	}
	v.parser = jwt.NewParser(jwt.WithValidMethods(v.methods), jwt.WithExpirationRequired(), jwt.WithLeeway(tokenLeeway))
	return v, nil
}

// tokenLeeway is the clock skew allowed for nbf and iat. A token's exp is
// kept to the second: a subscription ends at it (see subscribeRequest),
// and a request made after it is refused.
const tokenLeeway = 5 * time.Second

// openKeys starts fetching the identity provider's keys.
func (v *tokenVerifier) openKeys(log *slog.Logger) error {
	u, hc, err := jwksSource(v.idp.JWKS, v.idp.HTTPClient)
	if err != nil {
		return err
	}
	if u.Scheme == "file" {
		// Read it now, so that a mistake is said at start.
		resp, err := hc.Get(u.String())
		if err != nil {
			return fmt.Errorf("identity provider keys %s: %w", v.idp.JWKS, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("identity provider keys %s: cannot read the file", v.idp.JWKS)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	keys, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{u.String()}, keyfunc.Override{
		Client:            hc,
		HTTPTimeout:       keyFetchTimeout,
		RefreshInterval:   cmp.Or(v.idp.Refresh, defaultKeyRefresh),
		RefreshUnknownKID: rate.NewLimiter(rate.Every(cmp.Or(v.idp.UnknownKeyRefresh, defaultUnknownKeyRefresh)), 1),
		// A token signed by an unknown key waits this long at most for
		// the next fetch allowed; later than that it is refused.
		RateLimitWaitMax: time.Second,
		RefreshErrorHandlerFunc: func(src string) func(context.Context, error) {
			return func(_ context.Context, err error) {
				log.Warn("identity provider keys not fetched; keeping those fetched before", "jwks", v.idp.JWKS, "err", err)
			}
		},
	})
	if err != nil {
		cancel()
		return fmt.Errorf("identity provider keys %s: %w", v.idp.JWKS, err)
	}
	v.keys, v.cancel = keys, cancel
	return nil
}

// jwksSource returns the URL to fetch a JWK Set from and the client that
// fetches it: a file path becomes a file:// URL read by a file transport;
// a URL must be https, or http to a loopback address.
func jwksSource(src string, hc *http.Client) (*url.URL, *http.Client, error) {
	if hc == nil {
		hc = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	u, err := url.Parse(src)
	if err != nil || u.Scheme == "" || len(u.Scheme) == 1 {
		// A path (or a Windows drive letter).
		abs, aerr := filepath.Abs(src)
		if aerr != nil {
			return nil, nil, fmt.Errorf("identity provider keys %s: %w", src, aerr)
		}
		u = &url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}
	}
	switch u.Scheme {
	case "file":
		if _, err := os.Stat(filepath.FromSlash(u.Path)); err != nil {
			return nil, nil, fmt.Errorf("identity provider keys: %w", err)
		}
		return u, &http.Client{Transport: http.NewFileTransport(http.Dir("/"))}, nil
	case "https":
		return u, hc, nil
	case "http":
		if ip := net.ParseIP(u.Hostname()); u.Hostname() == "localhost" || ip != nil && ip.IsLoopback() {
			return u, hc, nil
		}
		return nil, nil, fmt.Errorf("identity provider keys %s: fetch them over https (anyone on the way could replace keys fetched over http)", src)
	}
	return nil, nil, fmt.Errorf("identity provider keys %s: give an https:// URL or a file", src)
}

// close stops keeping the keys fresh.
func (v *tokenVerifier) close() {
	if v != nil {
		v.cancel()
	}
}

// keyFor is the parser's key function: the secret for HS256, the identity
// provider's key by kid for the rest.
func (v *tokenVerifier) keyFor(t *jwt.Token) (any, error) {
	if _, ok := t.Method.(*jwt.SigningMethodHMAC); ok {
		if len(v.secret) == 0 {
			return nil, errNoSecret
		}
		return v.secret, nil
	}
	if v.keys == nil {
		return nil, errNoProvider
	}
	return v.keys.Keyfunc(t)
}

// Why a token's key could not be found.
var (
	errNoSecret   = errors.New("this server takes no HS256 tokens (it has no secret)")
	errNoProvider = errors.New("this server takes only HS256 tokens signed with its secret (it has no identity provider)")
)

// verify checks a token and returns the identity it grants.
func (v *tokenVerifier) verify(raw string, now time.Time) (*identity, error) {
	claims := jwt.MapClaims{}
	tok, err := v.parser.ParseWithClaims(raw, claims, v.keyFor)
	if errors.Is(err, jwkset.ErrKeyNotFound) {
		kid, _ := tok.Header["kid"].(string)
		return nil, protocol.Errorf(http.StatusUnauthorized, protocol.CodeUnauthorized,
			"the token was signed by a key the identity provider does not list (kid %q); get a new token", kid)
	}
	if errors.Is(err, jwt.ErrTokenSignatureInvalid) && v.keys == nil {
		return nil, protocol.Errorf(http.StatusUnauthorized, protocol.CodeUnauthorized, "the token was not signed by this server's secret")
	}
	if err != nil {
		return nil, tokenError(err)
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil || !now.Before(exp.Time) {
		return nil, tokenError(jwt.ErrTokenExpired)
	}
	names := ClaimNames{}.withDefaults()
	if _, hmac := tok.Method.(*jwt.SigningMethodHMAC); !hmac {
		if err := v.idpIss.Validate(claims); err != nil {
			return nil, tokenError(err)
		}
		names = v.idp.Claims.withDefaults()
	}
	return claimsIdentity(claims, names, exp.Time)
}

// claimsIdentity reads who the token names and what it grants.
func claimsIdentity(claims jwt.MapClaims, names ClaimNames, exp time.Time) (*identity, error) {
	unauthorized := func(format string, args ...any) error {
		return protocol.Errorf(http.StatusUnauthorized, protocol.CodeUnauthorized, format, args...)
	}
	id := &identity{expires: exp}
	user, _ := claim(claims, names.User).(string)
	if err := protocol.ValidateName("user", user); err != nil {
		return nil, unauthorized("the token's user claim %q: %v", names.User, err)
	}
	id.user = user
	rooms, ok := stringList(claim(claims, names.Rooms))
	if !ok {
		return nil, unauthorized("the token's rooms claim %q is not a list of rooms", names.Rooms)
	}
	for _, r := range rooms {
		if protocol.ValidateRoomPattern(r) == nil {
			id.rooms = append(id.rooms, r)
		}
	}
	id.publish = grants(claims, names.Publish)
	id.tasks = grants(claims, names.Tasks)
	id.admin = grants(claims, names.Admin)
	return id, nil
}

// claim returns the value of a claim by name, or by a path of dots into
// nested objects when there is no claim of the whole name; nil when
// absent.
func claim(claims jwt.MapClaims, name string) any {
	if v, ok := claims[name]; ok {
		return v
	}
	var cur any = map[string]any(claims)
	for part := range strings.SplitSeq(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	return cur
}

// stringList reads a claim that lists strings: a JSON list of strings, or
// one string of items separated by spaces or commas. Absent is empty.
func stringList(v any) ([]string, bool) {
	switch v := v.(type) {
	case nil:
		return nil, true
	case string:
		return strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' }), true
	case []any:
		out := make([]string, 0, len(v))
		for _, item := range v {
			s, ok := item.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

// grants reads a grant: "claim" is true when the claim is true (or
// "true"), "claim=value" when the claim holds value.
func grants(claims jwt.MapClaims, spec string) bool {
	name, want, hasValue := strings.Cut(spec, "=")
	v := claim(claims, name)
	if !hasValue {
		b, ok := v.(bool)
		return ok && b || v == "true"
	}
	list, _ := stringList(v)
	return slices.Contains(list, want)
}

// tokenError turns why a token was refused into a 401 that says so.
func tokenError(err error) error {
	var ae *protocol.Error
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, jwt.ErrTokenExpired):
		return protocol.Errorf(http.StatusUnauthorized, protocol.CodeUnauthorized, "the token has expired; get a new one")
	case errors.Is(err, jwt.ErrTokenMalformed):
		return protocol.Errorf(http.StatusUnauthorized, protocol.CodeUnauthorized, "the token is malformed; pass it whole, as it was issued (pushd token prints one)")
	case errors.Is(err, errNoSecret):
		return protocol.Errorf(http.StatusUnauthorized, protocol.CodeUnauthorized, "%v; give a token of its identity provider", errNoSecret)
	case errors.Is(err, errNoProvider):
		return protocol.Errorf(http.StatusUnauthorized, protocol.CodeUnauthorized, "%v", errNoProvider)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return protocol.Errorf(http.StatusUnauthorized, protocol.CodeUnauthorized, "the token was not signed by this server's secret or its identity provider")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return protocol.Errorf(http.StatusUnauthorized, protocol.CodeUnauthorized, "the token is from another issuer than this server takes")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return protocol.Errorf(http.StatusUnauthorized, protocol.CodeUnauthorized, "the token is not for this server (its audience)")
	}
	return protocol.Errorf(http.StatusUnauthorized, protocol.CodeUnauthorized, "the token is not valid for this server: %v", err)
}
