package natsstore

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushd/push/server/tasks"
)

var _ tasks.Keys = (*Tasks)(nil)

// keyBucket returns the bucket of idempotency keys, "<prefix>_task_keys",
// creating it on first use with a TTL of window, so that a key goes once
// it no longer stands for its task; a bucket made with a shorter TTL is
// given this one.
func (ts *Tasks) keyBucket(ctx context.Context, window time.Duration) (jetstream.KeyValue, error) {
	ts.keysMu.Lock()
	defer ts.keysMu.Unlock()
	if ts.keys != nil {
		return ts.keys, nil
	}
	cfg := jetstream.KeyValueConfig{
		Bucket:      ts.st.opts.Prefix + "_task_keys",
		Description: "pushd idempotency keys of task starts",
		TTL:         window,
		Storage:     jetstream.FileStorage,
		Replicas:    ts.st.opts.Replicas,
	}
	kv, err := bucket(ctx, ts.st.js, cfg)
	if err != nil {
		return nil, err
	}
	status, err := kv.Status(ctx)
	if err != nil {
		return nil, unavailable(fmt.Errorf("bucket %s: %w", cfg.Bucket, err))
	}
	if status.TTL() < window {
		if kv, err = ts.st.js.UpdateKeyValue(ctx, cfg); err != nil {
			return nil, unavailable(fmt.Errorf("bucket %s: give it a TTL of %s: %w", cfg.Bucket, window, err))
		}
	}
	ts.keys = kv
	return kv, nil
}

// keyOf is an idempotency key as a bucket key: in hex, as NATS keys
// take no ':'.
func keyOf(key string) string { return hex.EncodeToString([]byte(key)) }

// ClaimKey implements tasks.Keys with a create of the key in the bucket:
// of the servers that claim one key at once, one wins. A claim older
// than window is replaced, compare-and-set on its revision.
func (ts *Tasks) ClaimKey(ctx context.Context, c tasks.Claim, window time.Duration) (tasks.Claim, bool, error) {
	if err := ts.st.checkOpen(); err != nil {
		return tasks.Claim{}, false, err
	}
	ctx, cancel := context.WithTimeout(ctx, ts.st.opts.Timeout)
	defer cancel()
	kv, err := ts.keyBucket(ctx, window)
	if err != nil {
		return tasks.Claim{}, false, err
	}
	data, err := json.Marshal(c)
	if err != nil {
		return tasks.Claim{}, false, fmt.Errorf("encode claim: %w", err)
	}
	k := keyOf(c.Key)
	for {
		rev, err := kv.Create(ctx, k, data)
		if err == nil {
			c.Rev = rev
			return c, true, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return tasks.Claim{}, false, unavailable(fmt.Errorf("claim key: %w", err))
		}
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue // gone meanwhile
		}
		if err != nil {
			return tasks.Claim{}, false, unavailable(fmt.Errorf("read claim: %w", err))
		}
		var held tasks.Claim
		if err := json.Unmarshal(e.Value(), &held); err != nil {
			return tasks.Claim{}, false, fmt.Errorf("decode claim of key %q: %w", c.Key, err)
		}
		held.Rev = e.Revision()
		if time.Since(held.At) < window {
			return held, false, nil
		}
		rev, err = kv.Update(ctx, k, data, e.Revision())
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			continue // another server got there first
		}
		if err != nil {
			return tasks.Claim{}, false, unavailable(fmt.Errorf("claim key: %w", err))
		}
		c.Rev = rev
		return c, true, nil
	}
}

// DropKey implements tasks.Keys, compare-and-set on the claim's revision.
func (ts *Tasks) DropKey(ctx context.Context, c tasks.Claim) error {
	if err := ts.st.checkOpen(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, ts.st.opts.Timeout)
	defer cancel()
	ts.keysMu.Lock()
	kv := ts.keys
	ts.keysMu.Unlock()
	if kv == nil {
		return nil
	}
	err := kv.Delete(ctx, keyOf(c.Key), jetstream.LastRevision(c.Rev))
	if err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return unavailable(fmt.Errorf("drop claim of key %q: %w", c.Key, err))
	}
	return nil
}
