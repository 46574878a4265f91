package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/pushd/push/internal/backoff"
	"github.com/pushd/push/server"
	"github.com/pushd/push/server/natsstore"
	"github.com/pushd/push/server/tasks"
)

// natsOptions are serve's flags for running as one of several servers on
// NATS JetStream.
type natsOptions struct {
	url      string
	creds    string
	prefix   string
	replicas int
	timeout  time.Duration
}

func (o *natsOptions) addFlags(f *pflag.FlagSet) {
	d := natsstore.DefaultOptions()
	f.StringVar(&o.url, "nats", "", "NATS server URL(s), comma-separated: keep streams, presence and tasks in NATS JetStream, shared with every pushd on the same NATS")
	f.StringVar(&o.creds, "nats-creds", "", "NATS credentials file (JWT and seed)")
	f.StringVar(&o.prefix, "nats-prefix", d.Prefix, "prefix of the streams, buckets and subjects pushd uses in NATS; pushd servers with the same prefix serve the same rooms")
	f.IntVar(&o.replicas, "nats-replicas", d.Replicas, "copies JetStream keeps of each stream and bucket (3 on a three-node NATS cluster)")
	f.DurationVar(&o.timeout, "nats-timeout", d.Timeout, "longest wait for NATS on any one call; longer fails the request with 503")
}

// natsParts is what serve takes from NATS.
type natsParts struct {
	store     *natsstore.Store
	tasks     *natsstore.Tasks
	taskStore tasks.Store
	roster    server.Roster
	taskPeers tasks.Peers
}

// close releases the parts, after the server's Shutdown: the task peers
// first, then the connection they share.
func (p *natsParts) close() {
	if p.tasks != nil {
		p.tasks.Close()
	}
	p.store.Close()
}

// check validates the NATS flags before anything connects. Mistakes in
// them are usage errors; a credentials file that is not there is not.
func (o *natsOptions) check() error {
	if o.replicas < 1 || o.replicas > 5 {
		return usagef("--nats-replicas %d: use 1 to 5 (JetStream's limit)", o.replicas)
	}
	// Checked here too, so that it is reported with the other flags'
	// mistakes.
	if err := natsstore.ValidatePrefix(o.prefix); err != nil {
		return usagef("--nats-prefix: %v", err)
	}
	if o.creds != "" {
		if _, err := os.Stat(o.creds); err != nil {
			return fmt.Errorf("--nats-creds: %w", err)
		}
	}
	return nil
}

// open connects to NATS and sets up the store, presence roster and task
// peers on it. Call check first.
func (o *natsOptions) open(ctx context.Context, history int, historyAge, dedupeWindow time.Duration, log *slog.Logger) (*natsParts, error) {
	host, _ := os.Hostname()
	// A NATS cluster that has just formed takes a few seconds to elect
	// the leaders of the streams and buckets pushd makes: wait that long.
	ctx, cancel := context.WithTimeout(ctx, o.timeout+startupGrace)
	defer cancel()
	st, err := natsstore.Open(ctx, natsstore.Options{
		URL:          o.url,
		CredsFile:    o.creds,
		Prefix:       o.prefix,
		Replicas:     o.replicas,
		MaxEvents:    history,
		MaxAge:       historyAge,
		DedupeWindow: dedupeWindow,
		Timeout:      o.timeout,
		Name:         "pushd " + host,
		Logger:       log,
	})
	if err != nil {
		return nil, err
	}
	parts := &natsParts{store: st}
	roster, err := retryUnavailable(ctx, log, "presence roster", func() (*natsstore.Roster, error) {
		return st.Roster(ctx, natsstore.RosterOptions{Node: nodeName(host), Logger: log})
	})
	if err != nil {
		parts.close()
		return nil, err
	}
	tasks, err := retryUnavailable(ctx, log, "task store", func() (*natsstore.Tasks, error) {
		return natsstore.OpenTasks(ctx, st, natsstore.TaskOptions{Logger: log})
	})
	if err != nil {
		parts.close()
		return nil, err
	}
	parts.tasks, parts.roster, parts.taskStore, parts.taskPeers = tasks, roster, tasks, tasks
	return parts, nil
}

// startupGrace is how long, beyond --nats-timeout, serve waits at start
// for NATS to answer and make pushd's buckets.
const startupGrace = 25 * time.Second

// retryUnavailable calls open until it succeeds, fails for a reason other
// than NATS being out of reach, or ctx ends.
func retryUnavailable[T any](ctx context.Context, log *slog.Logger, what string, open func() (T, error)) (T, error) {
	for {
		v, err := open()
		if err == nil || !errors.Is(err, server.ErrUnavailable) {
			return v, err
		}
		log.Info("waiting for NATS", "for", what, "err", err)
		if !backoff.Sleep(ctx, 500*time.Millisecond) {
			return v, err
		}
	}
}

// nodeName makes a host name fit a roster node name: letters, digits, -
// and _, at most 64 of them.
func nodeName(host string) string {
	b := []byte(host)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	if len(b) > 64 {
		b = b[:64]
	}
	return string(b)
}
