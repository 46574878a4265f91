//go:build !unix

package server

import "net"

// tryWrite writes nothing where sockets cannot be written without waiting
// here: the caller writes the usual way.
func tryWrite(net.Conn, []byte) (n int, ok bool, err error) { return 0, false, nil }
