//go:build !unix

package server

import "net"

// socketWriter writes nothing where sockets cannot be written without
// waiting here: the caller writes the usual way.
type socketWriter struct{}

func newSocketWriter(net.Conn) *socketWriter { return nil }

func (*socketWriter) tryWrite([]byte) (n int, ok bool, err error) { return 0, false, nil }
