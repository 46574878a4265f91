package server_test

import (
	"testing"

	"github.com/pushd/push/server"
	"github.com/pushd/push/server/storetest"
)

func TestMemoryStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, o storetest.Options) server.Store {
		s := server.NewMemoryStore(server.MemoryOptions{MaxEvents: o.MaxEvents, MaxAge: o.MaxAge, DedupeWindow: o.DedupeWindow})
		t.Cleanup(func() { s.Close() })
		return s
	})
}
