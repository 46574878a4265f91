package natsstore_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pushd/push/internal/natstest"
	"github.com/pushd/push/internal/testlog"
	"github.com/pushd/push/internal/testwait"
	"github.com/pushd/push/protocol"
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
	storetest.Run(t, func(t *testing.T, o storetest.Options) server.Store {
		n++ // a prefix per store: each starts empty
		return open(t, ns.URL(), natsstore.Options{Prefix: "t" + string(rune('a'+n%26)) + time.Now().Format("150405999"),
			MaxEvents: o.MaxEvents, MaxAge: o.MaxAge, DedupeWindow: o.DedupeWindow})
	})
}

// BenchmarkPublish measures acknowledged publishes through a server on the
// NATS store (an embedded nats-server, file storage), serial and with many
// concurrent publishers, whose appends the hub groups.
func BenchmarkPublish(b *testing.B) {
	storetest.BenchmarkPublish(b, func(b *testing.B) server.Store {
		return open(b, natstest.Start(b).URL(), natsstore.Options{})
	})
}

func TestOpenErrors(t *testing.T) {
	ns := natstest.Start(t)
	plain := natstest.StartWithoutJetStream(t)
	tests := []struct {
		name string
		opts natsstore.Options
		want string
	}{
		{"no URL", natsstore.Options{}, "no URL"},
		{"bad prefix", natsstore.Options{URL: ns.URL(), Prefix: "a.b"}, `prefix "a.b"`},
		{"prefix with a colon", natsstore.Options{URL: ns.URL(), Prefix: "pushd:eu"}, `prefix "pushd:eu"`},
		{"prefix too long", natsstore.Options{URL: ns.URL(), Prefix: strings.Repeat("p", 33)}, "1 to 32"},
		{"no JetStream", natsstore.Options{URL: plain.URL()}, "JetStream is not enabled"},
		{"nothing there", natsstore.Options{URL: "nats://127.0.0.1:1", Timeout: time.Second}, "connect to NATS at nats://127.0.0.1:1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := natsstore.Open(context.Background(), tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open: %v; want an error mentioning %q", err, tc.want)
			}
		})
	}
}

// A store closed on purpose says nothing about a lost connection, then or
// later: Close returns once the connection's callbacks have run. A
// connection that is really lost is still reported.
func TestCloseIsQuiet(t *testing.T) {
	ns := natstest.Start(t)
	var logs testlog.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	url := ns.URL()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	st, err := natsstore.Open(ctx, natsstore.Options{URL: url, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(ctx, "room/lobby", []protocol.Event{{Type: protocol.TypeMessage, User: "ann", Text: "hi"}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if got := logs.String(); strings.Contains(got, "lost NATS connection") {
		t.Errorf("closing the store logged a lost connection:\n%s", got)
	}

	st, err = natsstore.Open(ctx, natsstore.Options{URL: url, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ns.Stop()
	testwait.Until(t, 10*time.Second, 5*time.Millisecond, func() error {
		if !strings.Contains(logs.String(), "lost NATS connection; reconnecting") {
			return errors.New("the lost connection was not logged")
		}
		return nil
	})
}
