package client

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/pushd/push/protocol"
)

// TokenUser returns the user a pushd token names (its "sub" claim), read
// without verifying the token: only the server, which has the secret, can
// tell whether the token is valid. A server that takes the token acts as
// that user, and refuses another name in ?user= or a message's user, so a
// client that holds a token should act as its user. The error says why the
// token cannot be read (it is not a JWT, or names no valid user).
func TokenUser(token string) (string, error) {
	var claims struct {
		Sub string `json:"sub"`
	}
	if err := readClaims(token, &claims); err != nil {
		return "", err
	}
	if err := protocol.ValidateName("user", claims.Sub); err != nil {
		return "", fmt.Errorf("token: sub: %w", err)
	}
	return claims.Sub, nil
}

// TokenRooms returns the rooms a pushd token allows (its "rooms" claim:
// names and patterns such as "*"), read without verifying the token, as
// TokenUser reads its user.
func TokenRooms(token string) ([]string, error) {
	var claims struct {
		Rooms []string `json:"rooms"`
	}
	if err := readClaims(token, &claims); err != nil {
		return nil, err
	}
	return claims.Rooms, nil
}

// readClaims decodes a JWT's claims into v, without verifying it.
func readClaims(token string, v any) error {
	parts := strings.Split(strings.TrimSpace(token), ".")
	if len(parts) != 3 {
		return errors.New("token: not a JWT (want three parts separated by dots)")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return fmt.Errorf("token: claims are not base64url: %w", err)
	}
	if err := json.Unmarshal(payload, v); err != nil {
		return fmt.Errorf("token: claims are not a JSON object: %w", err)
	}
	return nil
}
