package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/pushd/push/internal/backoff"
	"github.com/pushd/push/protocol"
)

// PublishOption changes one Publish.
type PublishOption func(*publishOptions)

type publishOptions struct {
	id    string
	tries int
}

// WithID gives the message id instead of a random one: a publish that
// repeats an id the room took within the server's de-duplication window
// stores nothing and returns the message as first stored (the same seq,
// epoch and time). Use it to make a publish safe to repeat across calls,
// even across restarts of the caller. See protocol.ValidateID for what an
// id may hold.
func WithID(id string) PublishOption {
	return func(o *publishOptions) { o.id = id }
}

// WithTries bounds the tries of one Publish (default 5); 1 tries once.
// StartTask tries as many times as the default.
func WithTries(n int) PublishOption {
	return func(o *publishOptions) { o.tries = max(n, 1) }
}

// defaultPublishTries is how many times Publish tries a message unless
// WithTries says otherwise, and StartTask a start.
const defaultPublishTries = 5

// publishPolicy is the pause between the tries of a publish or a task's
// start. A server that asks
// for a longer pause than its MaxRetryAfter (Retry-After) gets its answer
// passed back to the caller instead.
var publishPolicy = backoff.Policy{Min: 100 * time.Millisecond, Max: 2 * time.Second, MaxRetryAfter: 5 * time.Second}

// NewID returns a random message id: 128 bits, as 32 hexadecimal digits.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Publish posts text to room as the client's user (WithUser; on a server
// with tokens, the token's user) and returns the stored event. Its seq and
// epoch say where in the room's stream it landed, and its ID is the
// message's.
//
// Every message has an id (WithID, else a random one), so Publish is safe
// to retry: after a failure that trying again may fix (Retryable: no
// answer, a lost answer, 408, 429, 5xx) it tries again with the same id,
// after a pause with jitter that honours the server's Retry-After, up to
// WithTries times and while ctx lasts; the server stores the message
// once however often it arrives. A server that asks to wait longer than
// a few seconds (a rate limit's Retry-After) gets its answer returned
// rather than waited out. An error says the message was not stored unless
// MayHaveApplied(err) says it may have been; publishing it again with the
// same id settles which.
func (c *Client) Publish(ctx context.Context, room, text string, opts ...PublishOption) (*protocol.Event, error) {
	o := publishOptions{tries: defaultPublishTries}
	for _, opt := range opts {
		opt(&o)
	}
	if o.id == "" {
		o.id = NewID()
	}
	if err := protocol.ValidateID("id", o.id); err != nil {
		return nil, fmt.Errorf("publish to room %s: %w", room, err)
	}
	body := protocol.PublishRequest{User: c.user, Text: text, ID: o.id}
	var ev protocol.Event
	err := c.idempotently(ctx, o.tries, func(ctx context.Context) error {
		return c.post(ctx, "/v1/rooms/"+url.PathEscape(room)+"/messages", "", body, &ev)
	})
	if err != nil {
		return nil, fmt.Errorf("publish to room %s: %w", room, err)
	}
	return &ev, nil
}

// idempotently runs try, a request that names what it does with an id or
// an idempotency key, so that doing it again does nothing more: again
// after a failure that trying again may fix (Retryable), up to tries
// times in all and while ctx lasts, after a pause of publishPolicy's that
// honours the server's Retry-After; but an answer that asks to wait
// longer than the policy's MaxRetryAfter is returned at once.
func (c *Client) idempotently(ctx context.Context, tries int, try func(ctx context.Context) error) error {
	for n := 1; ; n++ {
		err := try(ctx)
		if err == nil {
			return nil
		}
		ra := RetryAfter(err)
		if n >= tries || !Retryable(err) || ra > publishPolicy.MaxRetryAfter || ctx.Err() != nil {
			return err
		}
		d := publishPolicy.Delay(n, 0, ra)
		c.log.Debug("request failed; sending it again as it was", "in", d, "err", err)
		if !backoff.Sleep(ctx, d) {
			return err
		}
	}
}

// post sends an idempotent POST of body (with an Idempotency-Key header
// when key is set) and decodes its answer, 201 for what it made, 200 for
// a repeat, into out; a token the server refused is renewed as do does.
func (c *Client) post(ctx context.Context, path, key string, body, out any) error {
	return c.authed(ctx, func() error { return c.postOnce(ctx, path, key, body, out) })
}

// postOnce is one try of post.
func (c *Client) postOnce(ctx context.Context, path, key string, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.requestTimeout)
	defer cancel()
	req, err := c.newRequest(ctx, http.MethodPost, path, nil, body)
	if err != nil {
		return err
	}
	if key != "" {
		req.Header.Set(protocol.IdempotencyKeyHeader, key)
	}
	return c.send(req, out, http.StatusCreated, http.StatusOK)
}
