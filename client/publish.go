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
func WithTries(n int) PublishOption {
	return func(o *publishOptions) { o.tries = max(n, 1) }
}

// defaultPublishTries is how many times Publish tries a message unless
// WithTries says otherwise.
const defaultPublishTries = 5

// publishPolicy is the pause between a publish's tries. A server that asks
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
	req := protocol.PublishRequest{User: c.user, Text: text, ID: o.id}
	path := "/v1/rooms/" + url.PathEscape(room) + "/messages"
	for n := 1; ; n++ {
		var ev protocol.Event
		err := c.do(ctx, http.MethodPost, path, nil, req, 0, http.StatusCreated, &ev)
		if err == nil {
			return &ev, nil
		}
		err = fmt.Errorf("publish to room %s: %w", room, err)
		ra := RetryAfter(err)
		if n >= o.tries || !Retryable(err) || ra > publishPolicy.MaxRetryAfter || ctx.Err() != nil {
			return nil, err
		}
		d := publishPolicy.Delay(n, 0, ra)
		c.log.Debug("publish failed; trying again with the same id", "room", room, "id", o.id, "in", d, "err", err)
		if !backoff.Sleep(ctx, d) {
			return nil, err
		}
	}
}
