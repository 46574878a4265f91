package server

import (
	"maps"
	"net/http"
	"slices"

	"github.com/pushd/push/protocol"
)

// checkQuery refuses a request that gives a query parameter more than
// once (?since=1&since=2): which one was meant cannot be told. It names
// the first such parameter in sorted order. A parameter the endpoint does
// not know, given once, is ignored.
func checkQuery(r *http.Request) error {
	q := r.URL.Query()
	for _, name := range slices.Sorted(maps.Keys(q)) {
		if n := len(q[name]); n > 1 {
			return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidParam, "query parameter %q is given %d times; give it once", name, n)
		}
	}
	return nil
}
