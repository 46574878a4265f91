package boltstore

import (
	"bytes"
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/pushd/push/server"
)

// bucketPresence holds who is present: presence/<room>\x00<user> = "".
var bucketPresence = []byte("presence")

var _ server.PresenceStore = (*Store)(nil)

// presenceKey is the key of user in room; names never hold a NUL.
func presenceKey(room, user string) []byte {
	return []byte(room + "\x00" + user)
}

// SetPresent implements server.PresenceStore. It commits at once: its
// callers hold a room's lock, so a batch would only add its delay.
func (s *Store) SetPresent(_ context.Context, room, user string, present bool) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		if !present {
			if b := tx.Bucket(bucketPresence); b != nil {
				return b.Delete(presenceKey(room, user))
			}
			return nil
		}
		b, err := tx.CreateBucketIfNotExists(bucketPresence)
		if err != nil {
			return err
		}
		return b.Put(presenceKey(room, user), nil)
	})
	if err != nil {
		return fmt.Errorf("save presence of %s in %s: %w", user, room, closedErr(err))
	}
	return nil
}

// LoadPresent implements server.PresenceStore.
func (s *Store) LoadPresent(context.Context) (map[string][]string, error) {
	out := make(map[string][]string)
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPresence)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error {
			room, user, ok := bytes.Cut(k, []byte{0})
			if !ok {
				return fmt.Errorf("presence key %q: %w", k, ErrFormat)
			}
			out[string(room)] = append(out[string(room)], string(user))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load presence: %w", closedErr(err))
	}
	return out, nil
}
