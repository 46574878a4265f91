package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/pushd/push/protocol"
)

// Rooms returns the rooms the server has in use that the client's token
// allows, with how many are present in each, sorted by name.
func (c *Client) Rooms(ctx context.Context) ([]protocol.RoomInfo, error) {
	var l protocol.RoomList
	if err := c.do(ctx, http.MethodGet, "/v1/rooms", nil, nil, 0, http.StatusOK, &l); err != nil {
		return nil, fmt.Errorf("list rooms: %w", err)
	}
	return l.Rooms, nil
}

// ReadBefore reads room's history backwards: the newest events before the
// cursor before (at most limit; the server's default when 0), oldest
// first, and in Page.Before the cursor to read the page before them ("":
// none is left). A cursor past the end reads the newest events; one of an
// epoch the room no longer has is refused with 409 conflict.
func (c *Client) ReadBefore(ctx context.Context, room string, before protocol.Cursor, limit int) (*protocol.Page, error) {
	q := withLimit(url.Values{"before": {before.String()}}, limit)
	var p protocol.Page
	if err := c.do(ctx, http.MethodGet, "/v1/rooms/"+url.PathEscape(room)+"/events", q, nil, 0, http.StatusOK, &p); err != nil {
		return nil, fmt.Errorf("read room %s before %s: %w", room, before, err)
	}
	return &p, nil
}
