package server

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/pushd/push/protocol"
)

// serveHistory answers a backwards read of a room's history,
// GET /v1/rooms/{room}/events?before=C&limit=N: the newest events before
// C (seq below C's, in C's epoch), at most N (protocol.DefaultPageEvents
// when not given), oldest first, and the cursor to ask for the page
// before. A cursor past the stream's end reads its newest events. A cursor
// of another epoch is refused with 409: the history it points into is
// gone. It reads the store, which holds every event the hub has taken.
func (s *Server) serveHistory(w http.ResponseWriter, r *http.Request, stream string, q url.Values) error {
	if q.Has("since") {
		return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidParam, "give since (to follow the stream) or before (to read back), not both")
	}
	before, err := protocol.ParseCursor(q.Get("before"))
	if err != nil {
		return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidCursor, "before: %v", err)
	}
	limit := protocol.DefaultPageEvents
	if q.Has("limit") {
		n, err := strconv.Atoi(q.Get("limit"))
		if err != nil || n < 1 || n > protocol.MaxPageEvents {
			return protocol.Errorf(http.StatusBadRequest, protocol.CodeInvalidParam, "limit %q: give a whole number from 1 to %d", q.Get("limit"), protocol.MaxPageEvents)
		}
		limit = n
	}
	ctx := r.Context()
	info, err := s.store.Info(ctx, stream)
	if err != nil {
		return err
	}
	if before.Epoch != "" && before.Epoch != info.Epoch {
		return protocol.Errorf(http.StatusConflict, protocol.CodeConflict,
			"the cursor %s is of epoch %s, but %s began anew as epoch %s: the history before it is gone", before, before.Epoch, stream, info.Epoch)
	}
	// Seqs rise by one per event and retention drops only the oldest, so
	// the page is the events from..end-1, read forwards.
	end := min(before.Seq, info.Last+1)
	from := max(info.First, 1)
	if end > uint64(limit) {
		from = max(from, end-uint64(limit))
	}
	page := protocol.Page{Events: []protocol.Event{}}
	if from < end {
		events, now, err := s.store.Read(ctx, stream, from-1, int(end-from))
		if err != nil {
			return err
		}
		if now.Epoch != info.Epoch {
			return protocol.Errorf(http.StatusConflict, protocol.CodeConflict, "%s began anew while it was read; read again", stream)
		}
		for _, e := range events {
			if e.Seq < end {
				page.Events = append(page.Events, e)
			}
		}
		if len(page.Events) > 0 && page.Events[0].Seq > max(now.First, 1) {
			page.Before = page.Events[0].Cursor().String()
		}
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}
