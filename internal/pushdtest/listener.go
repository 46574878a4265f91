package pushdtest

import (
	"errors"
	"net"
	"sync"
	"syscall"
	"testing"
)

// FreeAddr returns a 127.0.0.1 address whose port was free a moment ago:
// nothing listens there, and a server started there can come back on it
// after it dies, where its clients look for it.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// switchListener is a server's listener that can be taken off the network
// (down: its socket is closed, so connections are refused, and the
// connections it accepted are cut) and put back on the same address (up).
type switchListener struct {
	addr   net.Addr
	mu     sync.Mutex
	inner  net.Listener  // nil while down
	back   chan struct{} // while down: closed when up again or closed
	conns  map[net.Conn]struct{}
	closed bool
}

func newSwitchListener(inner net.Listener) *switchListener {
	return &switchListener{addr: inner.Addr(), inner: inner, conns: make(map[net.Conn]struct{})}
}

func (l *switchListener) Addr() net.Addr { return l.addr }

// Accept waits while the listener is down, and tracks what it accepts.
func (l *switchListener) Accept() (net.Conn, error) {
	for {
		l.mu.Lock()
		inner, back, closed := l.inner, l.back, l.closed
		l.mu.Unlock()
		switch {
		case closed:
			return nil, net.ErrClosed
		case inner == nil:
			<-back
			continue
		}
		c, err := inner.Accept()
		l.mu.Lock()
		current := l.inner == inner && !l.closed
		if err == nil && current {
			tc := &trackedConn{Conn: c, l: l}
			l.conns[tc] = struct{}{}
			l.mu.Unlock()
			return tc, nil
		}
		l.mu.Unlock()
		if err == nil {
			_ = c.Close()
			continue
		}
		if !current {
			continue // taken down (or closed) meanwhile: look again
		}
		return nil, err
	}
}

func (l *switchListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	if l.inner != nil {
		return l.inner.Close()
	}
	close(l.back)
	return nil
}

// down closes the socket and cuts every accepted connection.
func (l *switchListener) down() {
	l.mu.Lock()
	if l.inner == nil || l.closed {
		l.mu.Unlock()
		return
	}
	_ = l.inner.Close()
	l.inner, l.back = nil, make(chan struct{})
	l.mu.Unlock()
	l.cut()
}

// up listens again on the same address.
func (l *switchListener) up() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inner != nil || l.closed {
		return nil
	}
	ln, err := net.Listen("tcp", l.addr.String())
	if err != nil {
		return err
	}
	l.inner = ln
	close(l.back)
	return nil
}

// cut closes every connection accepted so far.
func (l *switchListener) cut() {
	l.mu.Lock()
	conns := l.conns
	l.conns = make(map[net.Conn]struct{})
	l.mu.Unlock()
	for c := range conns {
		_ = c.Close()
	}
}

// trackedConn is a connection the listener cuts when it goes down.
type trackedConn struct {
	net.Conn
	l *switchListener
}

func (c *trackedConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// SyscallConn gives the server the socket underneath, as an accepted
// connection would, so that the server's writes that never wait work the
// same under test.
func (c *trackedConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("no socket underneath")
	}
	return sc.SyscallConn()
}
