package server_test

import (
	"testing"
	"time"

	"github.com/pushd/push/server"
	"github.com/pushd/push/server/storetest"
)

func TestMemoryStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, maxEvents int, maxAge time.Duration) server.Store {
		s := server.NewMemoryStore(maxEvents, maxAge)
		t.Cleanup(func() { s.Close() })
		return s
	})
}
