//go:build unix

package server

import (
	"errors"
	"net"
	"syscall"
)

// socketWriter writes to a connection's socket without waiting for room
// in it. It is made once per connection, so a write allocates nothing;
// one goroutine at a time may use it.
type socketWriter struct {
	rc    syscall.RawConn
	write func(fd uintptr) bool // w.writeFD, bound once
	b     []byte                // what the write in progress writes
	n     int                   // how much of b went out
	err   error
}

// newSocketWriter returns a writer for conn's socket, or nil when conn has
// no socket of its own to write to (TLS): the caller then writes the usual
// way.
func newSocketWriter(conn net.Conn) *socketWriter {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	w := &socketWriter{rc: rc}
	w.write = w.writeFD
	return w
}

// tryWrite writes as much of b as the socket takes at once: n is how much
// went out. The connection's write deadline holds. A nil w writes nothing
// and says so with ok false.
func (w *socketWriter) tryWrite(b []byte) (n int, ok bool, err error) {
	if w == nil {
		return 0, false, nil
	}
	w.b, w.n, w.err = b, 0, nil
	werr := w.rc.Write(w.write)
	n, err = w.n, w.err
	w.b, w.err = nil, nil
	if werr != nil {
		return n, true, werr
	}
	return n, true, err
}

// writeFD is the raw write: until b is out, the socket is full, or an
// error. It never asks to wait (it returns true).
func (w *socketWriter) writeFD(fd uintptr) bool {
	for w.n < len(w.b) {
		m, e := syscall.Write(int(fd), w.b[w.n:])
		if m > 0 {
			w.n += m
		}
		switch {
		case e == nil:
		case errors.Is(e, syscall.EINTR):
		case errors.Is(e, syscall.EAGAIN):
			return true // full: the rest is for a writer that may wait
		default:
			w.err = e
			return true
		}
	}
	return true
}
