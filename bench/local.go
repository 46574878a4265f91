package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/pushd/push/server"
)

// localServer is a pushd started by Run in this process: memory store, no
// limits, room enough for the run's messages and texts.
type localServer struct {
	url  string
	srv  *server.Server
	hs   *http.Server
	errc chan error
}

func startLocal(o Options) (*localServer, error) {
	d := server.DefaultConfig()
	srv, err := server.New(server.Config{
		// Keep every message of the run, so a subscriber that reconnects
		// late still resumes exactly.
		History:      max(d.History, o.Messages),
		MaxTextBytes: max(d.MaxTextBytes, o.Size),
		MaxBodyBytes: max(d.MaxBodyBytes, int64(o.Size)+4<<10),
		Limits:       server.Limits{}, // no rate or connection limits
	})
	if err != nil {
		return nil, fmt.Errorf("start the in-process server: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = srv.Shutdown(context.Background())
		return nil, fmt.Errorf("start the in-process server: %w", err)
	}
	l := &localServer{
		url:  "http://" + ln.Addr().String(),
		srv:  srv,
		hs:   &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)},
		errc: make(chan error, 1),
	}
	go func() { l.errc <- l.hs.Serve(ln) }()
	return l, nil
}

// stop shuts the server down, as pushd serve does: it stops accepting and
// ends the subscriptions left, within 10 seconds.
func (l *localServer) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hsDone := make(chan error, 1)
	go func() { hsDone <- l.hs.Shutdown(ctx) }()
	serr := l.srv.Shutdown(ctx)
	herr := <-hsDone
	if err := <-l.errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		herr = errors.Join(herr, err)
	}
	if err := errors.Join(serr, herr); err != nil {
		_ = l.hs.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
