//go:build unix

package server

import (
	"errors"
	"net"
	"syscall"
)

// tryWrite writes as much of b to conn as its socket takes at once, without
// waiting for room: n is how much went out. ok is false, and nothing was
// written, when conn has no socket of its own to write to (TLS): the
// caller then writes the usual way. The connection's write deadline holds.
func tryWrite(conn net.Conn, b []byte) (n int, ok bool, err error) {
	sc, isSocket := conn.(syscall.Conn)
	if !isSocket {
		return 0, false, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	werr := rc.Write(func(fd uintptr) bool {
		for n < len(b) {
			m, e := syscall.Write(int(fd), b[n:])
			if m > 0 {
				n += m
			}
			switch {
			case e == nil:
			case errors.Is(e, syscall.EINTR):
			case errors.Is(e, syscall.EAGAIN):
				return true // full: the rest is for a writer that may wait
			default:
				err = e
				return true
			}
		}
		return true
	})
	if werr != nil {
		return n, true, werr
	}
	return n, true, err
}
