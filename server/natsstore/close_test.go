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
	"github.com/pushd/push/server/natsstore"
)

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
