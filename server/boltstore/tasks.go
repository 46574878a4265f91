package boltstore

import (
	"context"
	"encoding/json"
	"fmt"

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
