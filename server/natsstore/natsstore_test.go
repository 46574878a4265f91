package natsstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/pushd/push/internal/natstest"
	"github.com/pushd/push/server"
	"github.com/pushd/push/server/natsstore"
	"github.com/pushd/push/server/storetest"
)

func open(t testing.TB, url string, opts natsstore.Options) *natsstore.Store {
	t.Helper()
	opts.URL = url
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := natsstore.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	ns := natstest.Start(t)
	n := 0
	storetest.Run(t, func(t *testing.T, maxEvents int, maxAge time.Duration) server.Store {
		n++ // a prefix per store: each starts empty
		return open(t, ns.URL(), natsstore.Options{Prefix: "t" + string(rune('a'+n%26)) + time.Now().Format("150405999"), MaxEvents: maxEvents, MaxAge: maxAge})
	})
}
