//go:build !unix

package server

import "net"

// socketWriter writes nothing where sockets cannot be written without
// waiting here: the caller writes the usual way.
type socketWriter struct{}

// newSocketWriter returns nil: there is no socket to write to directly.
func newSocketWriter(net.Conn) *socketWriter { return nil }

// tryWrite writes nothing and says so with ok false.
func (*socketWriter) tryWrite([]byte) (n int, ok bool, err error) { return 0, false, nil }
