package server

import (
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/pushd/push/internal/backoff"
)

// acceptRetry is how a listener out of open files tries again: from a few
// milliseconds, up to a second apart.
var acceptRetry = backoff.Policy{Min: 5 * time.Millisecond, Max: time.Second}

// Listener wraps ln for the server's http.Server: when the process is out
// of open files (EMFILE, ENFILE), Accept waits and tries again itself, up
// to a second apart, instead of returning the error for http.Server to
// log once per refused connection. It logs the first failure with the fix
// and, once accepting works again, how many failed meanwhile; every
// failure counts in pushd_accept_errors_total. Connections already open
// keep working throughout. Close ends a waiting Accept.
func (s *Server) Listener(ln net.Listener) net.Listener {
	return &filesListener{Listener: ln, s: s, closed: make(chan struct{})}
}

type filesListener struct {
	net.Listener
	s         *Server
	closeOnce sync.Once
	closed    chan struct{}
	// failed counts the failures since accepting last worked; zero when
	// it works. Accept is called from one goroutine, http.Server's.
	failed int
	since  time.Time
}

func (l *filesListener) Accept() (net.Conn, error) {
	retry := backoff.New(acceptRetry)
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			if l.failed > 0 {
				l.s.log.Warn("accepting connections again after running out of open files",
					"refused", l.failed, "for", time.Since(l.since).Round(time.Millisecond))
				l.failed = 0
			}
			return c, nil
		}
		if !errors.Is(err, syscall.EMFILE) && !errors.Is(err, syscall.ENFILE) {
			return nil, err
		}
		l.s.metrics.acceptErrors.Inc()
		if l.failed == 0 {
			l.since = time.Now()
			l.s.log.Error("out of open files: new connections wait until some close; raise the limit (ulimit -n, or LimitNOFILE= in a systemd unit) or spread the clients over more servers",
				"err", err)
		}
		l.failed++
		t := time.NewTimer(retry.Next())
		select {
		case <-t.C:
		case <-l.closed:
			t.Stop()
			return nil, net.ErrClosed
		}
	}
}

func (l *filesListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}
