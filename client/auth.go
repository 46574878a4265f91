package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/pushd/push/protocol"
)

// TokenSource returns a token for the server: the one to use now, and a
// fresh one when called after the server refused or ended the last (it
// expired). The client calls it when it first needs a token and after
// each such refusal, one call at a time, from the goroutine that needs
// it; ctx bounds the call.
type TokenSource func(ctx context.Context) (string, error)

// WithTokenSource makes every request carry a token from src, as
// WithToken does with one that never changes. When the server refuses the
// token (401) or ends a subscription because it expired, the client takes
// a new one from src and tries again at once: a subscription resumes from
// its cursor with nothing lost, and a call is made again. It overrides
// WithToken.
func WithTokenSource(src TokenSource) Option {
	return func(c *Client) { c.auth.source = src }
}

// tokens holds the client's token.
type tokens struct {
	source TokenSource // nil: the token never changes
	mu     sync.Mutex
	token  string
}

// current returns the token to send now, asking the source for the first.
func (t *tokens) current(ctx context.Context) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.token == "" && t.source != nil {
		if err := t.fetchLocked(ctx); err != nil {
			return "", err
		}
	}
	return t.token, nil
}

// renew replaces the token stale, which the server refused, with a fresh
// one from the source; true when there is a new token to try. A token
// renewed meanwhile by another caller counts, without a call.
func (t *tokens) renew(ctx context.Context, stale string) (bool, error) {
	if t.source == nil {
		return false, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.token != stale {
		return true, nil
	}
	if err := t.fetchLocked(ctx); err != nil {
		return false, err
	}
	return true, nil
}

// fetchLocked asks the source for a token. t.mu is held.
func (t *tokens) fetchLocked(ctx context.Context) error {
	tok, err := t.source(ctx)
	if err != nil {
		return fmt.Errorf("get a token: %w", err)
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return errors.New("get a token: the token source gave an empty token")
	}
	t.token = tok
	return nil
}

// tokenRefused reports whether err is the server refusing or ending a
// request for its token: a 401 answer, or a subscription closed because
// its token expired.
func tokenRefused(err error) bool {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Reason == protocol.CloseTokenExpired || ce.Code == protocol.CloseCodeTokenExpired
	}
	var pe *protocol.Error
	return errors.As(err, &pe) && pe.Status == http.StatusUnauthorized
}

// renewAfter takes a new token from the source when err says the server
// refused the token in sent; true when the request is to be made again at
// once.
func (c *Client) renewAfter(ctx context.Context, err error, sent string) bool {
	if !tokenRefused(err) {
		return false
	}
	ok, rerr := c.auth.renew(ctx, sent)
	if rerr != nil {
		c.log.Warn("token refused, and no new one", "err", rerr)
		return false
	}
	if ok {
		c.log.Info("token renewed", "after", err)
	}
	return ok
}
