package boltstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/pushd/push/protocol"
	"github.com/pushd/push/server/tasks"
)

// bucketTasks holds task records: tasks/<id> = <task JSON>.
var bucketTasks = []byte("tasks")

var _ tasks.Store = (*Store)(nil)

// SaveTask implements tasks.Store. Concurrent saves share a
// transaction.
func (s *Store) SaveTask(_ context.Context, t protocol.Task) error {
	js, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encode task %s: %w", t.ID, err)
	}
	err = s.db.Batch(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketTasks)
		if err != nil {
			return err
		}
		return b.Put([]byte(t.ID), js)
	})
	if err != nil {
		return fmt.Errorf("save task %s: %w", t.ID, err)
	}
	return nil
}

// DeleteTask implements tasks.Store.
func (s *Store) DeleteTask(_ context.Context, id string) error {
	err := s.db.Batch(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketTasks); b != nil {
			return b.Delete([]byte(id))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete task %s: %w", id, err)
	}
	return nil
}

// LoadTasks implements tasks.Store.
func (s *Store) LoadTasks(context.Context) ([]protocol.Task, error) {
	var out []protocol.Task
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTasks)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var t protocol.Task
			if err := json.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("task %s: %w: %v", k, ErrFormat, err)
			}
			out = append(out, t)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load tasks: %w", err)
	}
	return out, nil
}

// bucketTaskKeys holds the idempotency keys of task starts:
// task_keys/<key> = <tasks.Claim JSON>, and under keyPruned when claims
// older than their window were last deleted.
var (
	bucketTaskKeys = []byte("task_keys")
	keyPruned      = []byte("\x00pruned")
)

// storedClaim is a claim as stored, with its revision.
type storedClaim struct {
	tasks.Claim
	Rev uint64 `json:"rev"`
}

// pruneKeysEvery is how often, at most, ClaimKey deletes the claims that
// no longer stand for anything.
const pruneKeysEvery = time.Minute

var _ tasks.Keys = (*Store)(nil)

// ClaimKey implements tasks.Keys, in one transaction (shared with
// concurrent ones): the claim is on disk when it returns.
func (s *Store) ClaimKey(_ context.Context, c tasks.Claim, window time.Duration) (tasks.Claim, bool, error) {
	var held tasks.Claim
	var won bool
	err := s.db.Batch(func(tx *bolt.Tx) error {
		held, won = tasks.Claim{}, false
		b, err := tx.CreateBucketIfNotExists(bucketTaskKeys)
		if err != nil {
			return err
		}
		now := time.Now()
		if err := pruneKeys(b, now, window); err != nil {
			return err
		}
		if v := b.Get([]byte(c.Key)); v != nil {
			var sc storedClaim
			if err := json.Unmarshal(v, &sc); err != nil {
				return fmt.Errorf("claim of key %q: %w: %v", c.Key, ErrFormat, err)
			}
			if now.Sub(sc.At) < window {
				held = sc.Claim
				held.Rev = sc.Rev
				return nil
			}
		}
		c.Rev = b.Sequence() + 1
		if err := b.SetSequence(c.Rev); err != nil {
			return err
		}
		js, err := json.Marshal(storedClaim{c, c.Rev})
		if err != nil {
			return err
		}
		held, won = c, true
		return b.Put([]byte(c.Key), js)
	})
	if err != nil {
		return tasks.Claim{}, false, fmt.Errorf("claim key %q: %w", c.Key, err)
	}
	return held, won, nil
}

// pruneKeys deletes the claims older than window, at most once per
// pruneKeysEvery.
func pruneKeys(b *bolt.Bucket, now time.Time, window time.Duration) error {
	var last time.Time
	if v := b.Get(keyPruned); v != nil {
		_ = last.UnmarshalText(v)
	}
	if now.Sub(last) < pruneKeysEvery {
		return nil
	}
	var old [][]byte
	err := b.ForEach(func(k, v []byte) error {
		var c tasks.Claim
		if string(k) != string(keyPruned) && json.Unmarshal(v, &c) == nil && now.Sub(c.At) >= window {
			old = append(old, k)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range old {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	stamp, _ := now.MarshalText()
	return b.Put(keyPruned, stamp)
}

// DropKey implements tasks.Keys.
func (s *Store) DropKey(_ context.Context, c tasks.Claim) error {
	err := s.db.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTaskKeys)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(c.Key))
		var held storedClaim
		if v == nil || json.Unmarshal(v, &held) != nil || held.Rev != c.Rev {
			return nil
		}
		return b.Delete([]byte(c.Key))
	})
	if err != nil {
		return fmt.Errorf("drop claim of key %q: %w", c.Key, err)
	}
	return nil
}
