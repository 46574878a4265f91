package server

import (
	"errors"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pushd/push/protocol"
)

// Claims are what a pushd token grants its holder. Tokens are HS256 JWTs
// signed with the server's secret; sub is the user. (An identity provider's
// tokens may name these claims otherwise: see IdentityProvider.)
type Claims struct {
	// Rooms lists the rooms the user may join, read and (with Publish) post
	// to: names, or patterns with * and ? (path.Match), such as "dev-*".
	Rooms []string `json:"rooms,omitempty"`
	// Publish allows posting messages to those rooms.
	Publish bool `json:"publish,omitempty"`
	// Tasks allows starting, reporting on and cancelling tasks. Anyone
	// with a valid token may watch them.
	Tasks bool `json:"tasks,omitempty"`
	// Admin allows what Tasks does on every task, whoever started it, and
	// seeing every task, whatever its scope.
	Admin bool `json:"admin,omitempty"`
	jwt.RegisteredClaims
}

// MintToken signs a token for user that grants what c says (Rooms,
// Publish, Tasks, Admin), valid for ttl. Its registered claims (sub, iat, exp)
// are set here.
func MintToken(secret []byte, user string, c Claims, ttl time.Duration) (string, error) {
	if len(secret) < 16 {
		return "", errors.New("the secret must be at least 16 bytes")
	}
	if err := protocol.ValidateName("user", user); err != nil {
		return "", err
	}
	for _, r := range c.Rooms {
		if err := protocol.ValidateRoomPattern(r); err != nil {
			return "", err
		}
	}
	if ttl <= 0 {
		return "", errors.New("the token's lifetime must be positive")
	}
	now := time.Now()
	c.RegisteredClaims = jwt.RegisteredClaims{
		Subject: user, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
}

// identity is who made a request, from a verified token; nil when the
// server runs without authentication.
type identity struct {
	user    string
	rooms   []string // names or patterns
	publish bool
	tasks   bool
	admin   bool
	expires time.Time // the token's exp
}

// authenticate returns the request's identity: nil without authentication,
// else from "Authorization: Bearer <token>" or ?token= (for browsers'
// EventSource and WebSocket, which cannot set headers).
func (s *Server) authenticate(r *http.Request) (*identity, error) {
	if s.tokens == nil {
		return nil, nil
	}
	raw := ""
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return nil, protocol.Errorf(http.StatusUnauthorized, protocol.CodeUnauthorized, "the Authorization header must be \"Bearer <token>\"")
		}
		raw = strings.TrimSpace(tok)
	} else {
		raw = r.URL.Query().Get("token")
	}
	if raw == "" {
		return nil, protocol.Errorf(http.StatusUnauthorized, protocol.CodeUnauthorized, "this server needs a token: send \"Authorization: Bearer <token>\" or ?token=<token> (pushd token mints one)")
	}
	return s.tokens.verify(raw, time.Now())
}

// mayJoin reports whether id may use room.
func (id *identity) mayJoin(room string) bool {
	if id == nil {
		return true
	}
	for _, pattern := range id.rooms {
		if ok, _ := path.Match(pattern, room); ok {
			return true
		}
	}
	return false
}

// roomAccess checks that the request may use room (and publish there, if
// publish), and returns the user it acts as: the token's subject, or the
// claimed name when the server runs open. A claimed name that is not the
// token's subject is refused.
func (s *Server) roomAccess(r *http.Request, room, claimed string, publish bool) (string, error) {
	id, err := s.authenticate(r)
	if err != nil || id == nil {
		return claimed, err
	}
	if !id.mayJoin(room) {
		return "", protocol.Errorf(http.StatusForbidden, protocol.CodeForbidden, "user %s may not use room %s (the token allows %s)", id.user, room, strings.Join(id.rooms, ", "))
	}
	if publish && !id.publish {
		return "", protocol.Errorf(http.StatusForbidden, protocol.CodeForbidden, "user %s may read room %s but not post; ask for a token with publish", id.user, room)
	}
	if claimed != "" && claimed != id.user {
		return "", protocol.Errorf(http.StatusForbidden, protocol.CodeForbidden, "the token is for %s; it cannot act as %s", id.user, claimed)
	}
	return id.user, nil
}

// taskAccess checks that the request may watch tasks, or with change also
// start, report on and cancel them, and returns who makes it (nil on a
// server without tokens).
func (s *Server) taskAccess(r *http.Request, change bool) (*identity, error) {
	id, err := s.authenticate(r)
	if err != nil || id == nil {
		return nil, err
	}
	if change && !id.tasks && !id.admin {
		return nil, protocol.Errorf(http.StatusForbidden, protocol.CodeForbidden, "user %s may watch tasks but not start, report on or cancel them; ask for a token with tasks", id.user)
	}
	return id, nil
}

// name is id's user, "" on a server without tokens (nil).
func (id *identity) name() string {
	if id == nil {
		return ""
	}
	return id.user
}

// isAdmin reports whether id has the admin right; on a server without
// tokens (nil) everyone has.
func (id *identity) isAdmin() bool {
	return id == nil || id.admin
}
