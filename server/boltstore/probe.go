package boltstore

import (
	"context"
	"fmt"
	"time"

	"github.com/pushd/push/server"
)

var _ server.StoreProber = (*Store)(nil)

// Probe implements server.StoreProber: it times an fsync of the data file,
// which every append waits for.
func (s *Store) Probe(context.Context) (string, time.Duration, error) {
	start := time.Now()
	if err := s.db.Sync(); err != nil {
		return "fsync", 0, fmt.Errorf("fsync %s: %w", s.db.Path(), err)
	}
	return "fsync", time.Since(start), nil
}
